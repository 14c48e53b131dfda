package ordo

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ordoflow/ordo/internal/effects"
	"github.com/ordoflow/ordo/internal/engine"
	"github.com/ordoflow/ordo/internal/executor"
)

// Handler runs one attempt of a step in Go. It runs at least once per
// attempt (after a crash, an attempt may run again), so anything it does
// outside Ordo should use req.IdempotencyKey. Returning an error fails the
// attempt; the step is retried per its retry policy unless the error is
// marked with [NonRetryable].
type Handler func(ctx context.Context, req *StepRequest) (Result, error)

// Handlers maps handler (or queue) names to handlers.
type Handlers map[string]Handler

// StepRequest is what a [Handler] is given.
type StepRequest struct {
	InstanceID string
	Workflow   string
	Version    int
	Step       string
	// Attempt counts the tries of this step, from 1.
	Attempt int
	// IdempotencyKey is stable for one attempt of one step of one instance
	// (instance/step/attempt): pass it to the services the handler calls.
	IdempotencyKey string
	// Input is the step's input, JSON: the workflow input for a first step,
	// the output of the step before it, or for a join an object of the
	// outputs of the steps before it, keyed by step id.
	Input json.RawMessage
	// WorkflowInput is the input the instance was started with.
	WorkflowInput json.RawMessage
	// State is the workflow's state as the steps before left it.
	State json.RawMessage
}

// Bind decodes the step input into v.
func (r *StepRequest) Bind(v any) error { return unmarshal("step input", r.Input, v) }

// BindState decodes the workflow state into v (left unchanged when there is
// no state yet).
func (r *StepRequest) BindState(v any) error { return unmarshal("state", r.State, v) }

// BindWorkflowInput decodes the workflow input into v.
func (r *StepRequest) BindWorkflowInput(v any) error {
	return unmarshal("workflow input", r.WorkflowInput, v)
}

func unmarshal(what string, raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return NonRetryable(fmt.Errorf("decoding %s: %w", what, err))
	}
	return nil
}

// Result is what a step returns: its output (the input of the steps after
// it), the workflow's new state (nil leaves it unchanged) and side effects
// for Ordo to perform, as data. Output and State are JSON ([]byte,
// json.RawMessage) or any value encoding/json can marshal.
type Result struct {
	Output      any
	State       any
	SideEffects []SideEffect
}

// SideEffect is something for Ordo to do after the step is committed: call
// an HTTP endpoint, write a log line, or any type registered with
// [Engine.HandleEffect]. It is performed at least once, with an idempotency
// key that stays the same across its retries.
type SideEffect struct {
	Type    string
	Payload any
}

// HTTPEffect returns a side effect that calls url with body as JSON and the
// effect's idempotency key in the Idempotency-Key header. A non-2xx answer
// is a failure; 5xx, 408 and 429 are retried.
func HTTPEffect(method, url string, body any) SideEffect {
	return SideEffect{Type: "http", Payload: map[string]any{"method": method, "url": url, "body": body}}
}

// LogEffect returns a side effect that writes msg to the engine's logger at
// info level, with fields.
func LogEffect(msg string, fields map[string]any) SideEffect {
	return SideEffect{Type: "log", Payload: effects.LogPayload{Message: msg, Fields: fields}}
}

// EffectFunc performs one try of a side effect. A returned error is retried
// with the step's retry policy unless marked with [NonRetryable].
type EffectFunc func(ctx context.Context, req *EffectRequest) error

// EffectRequest is what an [EffectFunc] is given.
type EffectRequest struct {
	InstanceID string
	Step       string
	Index      int // the effect's position in the step's result
	Type       string
	Payload    json.RawMessage
	// IdempotencyKey is stable across the effect's retries
	// (instance/step/attempt/index).
	IdempotencyKey string
	// Attempt counts the effect's tries, from 1.
	Attempt int
}

// StepAttempt identifies the attempt of a step a handler is running.
type StepAttempt struct {
	InstanceID     string
	Workflow       string
	Step           string
	Attempt        int
	IdempotencyKey string
}

type stepAttemptKey struct{}

// StepAttemptFromContext returns the step attempt a handler's context
// belongs to, so that code deep in a handler's call tree can pass the
// idempotency key on without threading the request through.
func StepAttemptFromContext(ctx context.Context) (StepAttempt, bool) {
	a, ok := ctx.Value(stepAttemptKey{}).(StepAttempt)
	return a, ok
}

func adaptHandler(h Handler) engine.StepFunc {
	return func(ctx context.Context, c *engine.Call) (*engine.Outcome, error) {
		ctx = context.WithValue(ctx, stepAttemptKey{}, StepAttempt{
			InstanceID: c.InstanceID, Workflow: c.Workflow, Step: c.Step, Attempt: c.Attempt, IdempotencyKey: c.IdempotencyKey,
		})
		res, err := h(ctx, &StepRequest{
			InstanceID: c.InstanceID, Workflow: c.Workflow, Version: c.Version, Step: c.Step,
			Attempt: c.Attempt, IdempotencyKey: c.IdempotencyKey,
			Input: c.Input, WorkflowInput: c.WorkflowInput, State: c.State,
		})
		if err != nil {
			return nil, err
		}
		out := &engine.Outcome{}
		if res.Output != nil {
			if out.Output, err = toJSON(res.Output); err != nil {
				return nil, NonRetryable(fmt.Errorf("encoding output: %w", err))
			}
		}
		if res.State != nil {
			if out.State, err = toJSON(res.State); err != nil {
				return nil, NonRetryable(fmt.Errorf("encoding state: %w", err))
			}
		}
		for i, se := range res.SideEffects {
			if se.Type == "" {
				return nil, NonRetryable(fmt.Errorf("side effect %d has no type", i))
			}
			p, err := toJSON(se.Payload)
			if err != nil {
				return nil, NonRetryable(fmt.Errorf("encoding side effect %d: %w", i, err))
			}
			out.Effects = append(out.Effects, executor.Effect{Type: se.Type, Payload: p})
		}
		return out, nil
	}
}

// Instance is a workflow instance as [Engine.Get] returns it.
type Instance struct {
	ID             string
	Workflow       string
	Version        int
	Status         Status
	IdempotencyKey string
	BusinessKey    string
	ParentID       string
	// ParentStep is the parent's step that started this child workflow.
	ParentStep string
	Input      json.RawMessage
	State      json.RawMessage
	Output     json.RawMessage
	Error      *Error
	// Steps in the definition's order.
	Steps      []StepInfo
	Seq        int64 // sequence number of the last journal event
	CreatedAt  time.Time
	UpdatedAt  time.Time
	FinishedAt time.Time
}

// Step returns the step with the given id, or nil.
func (i *Instance) Step(id string) *StepInfo {
	for k := range i.Steps {
		if i.Steps[k].ID == id {
			return &i.Steps[k]
		}
	}
	return nil
}

// StepInfo is one step of an [Instance].
type StepInfo struct {
	ID         string
	Status     StepStatus
	Attempt    int
	Input      json.RawMessage
	Output     json.RawMessage
	Error      *Error
	Reason     string // why it was skipped
	StartedAt  time.Time
	FinishedAt time.Time
	// Child is the instance a workflow step started.
	Child string
	// Key is the correlation key a receive step waits for; MessageID the
	// message that completed it.
	Key       string
	MessageID string
}

// Event is one entry of an instance's journal.
type Event struct {
	Seq     int64
	Type    string // workflow.started, step.completed, effect.failed, ...
	Step    string
	Attempt int
	Time    time.Time
	// Data holds the event's fields as JSON (input, output, state, error...).
	Data json.RawMessage
}

// Error is an error recorded in the journal.
type Error struct {
	Message   string
	Code      string
	Step      string
	Retryable bool
}

func (e *Error) Error() string {
	if e.Step != "" {
		return "step " + e.Step + ": " + e.Message
	}
	return e.Message
}
