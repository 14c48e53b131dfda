// Package trigger turns what arrives from outside (a start request today;
// messages and task completions as transports are added) into commands for
// the executor. It validates and normalises the input and computes the keys
// that make a trigger idempotent; it never writes anything itself.
package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/internal/executor"
	"github.com/ordoflow/ordo/ordotype"
)

// MaxInputSize caps a workflow input.
const MaxInputSize = 1 << 20

// StartParams ask for a new instance of a workflow.
type StartParams struct {
	Workflow string
	// Version of the definition; 0 for the latest.
	Version int
	// Input is the workflow input, JSON. Empty means {}.
	Input json.RawMessage
	// IdempotencyKey, when set, overrides the definition's idempotencyKey
	// expression.
	IdempotencyKey string
	// BusinessKey, when set, overrides the definition's businessKey
	// expression.
	BusinessKey string
	ParentID    string
	// ParentStep and ParentAttempt name the parent's step that starts
	// this instance, a child workflow.
	ParentStep    string
	ParentAttempt int
	// TraceParent is the W3C trace context to keep with the instance.
	TraceParent string
}

// Start validates p against def and returns the executor's start command
// (without an instance ID). Errors wrap ordotype.ErrInvalid.
func Start(ctx context.Context, def *definition.Workflow, version int, p StartParams) (executor.Start, error) {
	in, err := NormalizeInput(p.Input)
	if err != nil {
		return executor.Start{}, err
	}
	cmd := executor.Start{Input: in, IdempotencyKey: p.IdempotencyKey, BusinessKey: p.BusinessKey, ParentID: p.ParentID,
		ParentStep: p.ParentStep, ParentAttempt: p.ParentAttempt, Version: version, TraceParent: p.TraceParent}
	var vars map[string]any
	eval := func(field string, e *definition.Expr) (string, error) {
		if vars == nil {
			vars = map[string]any{"input": executor.DecodeJSON(in), "state": nil, "outputs": map[string]any{}}
		}
		s, err := e.EvalString(ctx, vars)
		if err != nil {
			return "", fmt.Errorf("workflow %s: %s (%s): %v: %w", def.Name, field, e.Source, err, ordotype.ErrInvalid)
		}
		return s, nil
	}
	if cmd.IdempotencyKey == "" && def.IdempotencyKey != nil {
		if cmd.IdempotencyKey, err = eval("idempotencyKey", def.IdempotencyKey); err != nil {
			return executor.Start{}, err
		}
	}
	if cmd.BusinessKey == "" && def.BusinessKey != nil {
		if cmd.BusinessKey, err = eval("businessKey", def.BusinessKey); err != nil {
			return executor.Start{}, err
		}
	}
	return cmd, nil
}

// NormalizeInput checks that in is one JSON value no larger than
// MaxInputSize and returns it compacted; empty input becomes {}.
func NormalizeInput(in json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(in)) == 0 {
		return json.RawMessage("{}"), nil
	}
	if len(in) > MaxInputSize {
		return nil, fmt.Errorf("input is %d bytes, more than the %d allowed: %w", len(in), MaxInputSize, ordotype.ErrInvalid)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, in); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("input is not valid JSON: %v (at byte %d): %w", err, se.Offset, ordotype.ErrInvalid)
		}
		return nil, fmt.Errorf("input is not valid JSON: %v: %w", err, ordotype.ErrInvalid)
	}
	return buf.Bytes(), nil
}
