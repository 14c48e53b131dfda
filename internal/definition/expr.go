package definition

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
)

// Limits on evaluating an expression.
const (
	// exprCostLimit stops an evaluation that does too much work, such as
	// a comprehension over a huge input.
	exprCostLimit = 1_000_000
	// exprInterruptEvery is how many comprehension iterations run between
	// checks of the evaluation's context.
	exprInterruptEvery = 100
)

// Variables every expression can use.
const (
	varInput   = "input"
	varState   = "state"
	varOutputs = "outputs"
)

// celEnv is the CEL environment of every expression. A cel.Env is safe for
// concurrent use.
var celEnv = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable(varInput, cel.DynType),
		cel.Variable(varState, cel.DynType),
		cel.Variable(varOutputs, cel.MapType(cel.StringType, cel.DynType)),
	)
})

// Expr is a compiled CEL expression. Expressions see three variables:
// input (the instance's input), state (its state) and outputs (a map from
// step id to that step's output). An Expr is safe for concurrent use.
type Expr struct {
	// Source is the expression as written.
	Source string
	prog   cel.Program
}

// exprResult says which result types an expression may have. dyn, whose
// type is only known when evaluated, is always allowed.
type exprResult int

const (
	resultAny exprResult = iota
	resultBool
	resultString
	resultDeadline // a timestamp or an RFC 3339 string
)

// allows reports whether an expression of type t fits.
func (r exprResult) allows(t *cel.Type) bool {
	if t.IsExactType(cel.DynType) {
		return true
	}
	switch r {
	case resultBool:
		return t.IsExactType(cel.BoolType)
	case resultString:
		return t.IsExactType(cel.StringType)
	case resultDeadline:
		return t.IsExactType(cel.StringType) || t.IsExactType(cel.TimestampType)
	}
	return true
}

// String describes the allowed types for error messages.
func (r exprResult) String() string {
	switch r {
	case resultBool:
		return "bool"
	case resultString:
		return "string"
	case resultDeadline:
		return "timestamp or string"
	}
	return "any"
}

// compileExpr parses, type-checks and plans source. Errors are one line.
func compileExpr(source string, want exprResult) (*Expr, error) {
	if strings.TrimSpace(source) == "" {
		return nil, errors.New("empty expression")
	}
	env, err := celEnv()
	if err != nil {
		return nil, fmt.Errorf("creating CEL environment: %w", err)
	}
	ast, iss := env.Compile(source)
	if iss.Err() != nil {
		msgs := make([]string, 0, len(iss.Errors()))
		multiline := strings.Contains(source, "\n")
		for _, e := range iss.Errors() {
			loc := fmt.Sprintf("column %d", e.Location.Column()+1)
			if multiline {
				loc = fmt.Sprintf("line %d, column %d", e.Location.Line(), e.Location.Column()+1)
			}
			msg := strings.TrimSuffix(e.Message, " (in container '')")
			msgs = append(msgs, fmt.Sprintf("invalid expression at %s: %s", loc, msg))
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	if t := ast.OutputType(); !want.allows(t) {
		return nil, fmt.Errorf("expression must give a %s, not %s", want, t)
	}
	prog, err := env.Program(ast,
		cel.CostLimit(exprCostLimit),
		cel.InterruptCheckFrequency(exprInterruptEvery),
	)
	if err != nil {
		return nil, fmt.Errorf("invalid expression: %w", err)
	}
	return &Expr{Source: source, prog: prog}, nil
}

// Eval evaluates the expression. vars holds "input", "state" and "outputs";
// missing ones are null (outputs: empty). Values are what encoding/json
// decodes into (map[string]any, []any, float64, string, bool, nil) or other
// Go values CEL understands (int64, []byte, ...).
//
// The result is a plain Go value that encoding/json can marshal:
// map[string]any, []any, string, int64, uint64, float64, bool, []byte or nil.
// Timestamps become RFC 3339 strings and durations Go duration strings.
//
// Eval returns an error when the expression fails, for example when it reads
// a field that input does not have (use has(input.field) to test for one),
// when it exceeds its cost limit, or when ctx is done.
func (e *Expr) Eval(ctx context.Context, vars map[string]any) (any, error) {
	if e == nil || e.prog == nil {
		return nil, errors.New("evaluating expression: no expression")
	}
	activation := map[string]any{varInput: nil, varState: nil, varOutputs: map[string]any{}}
	for k, v := range vars {
		activation[k] = v
	}
	out, _, err := e.prog.ContextEval(ctx, activation)
	if err != nil {
		return nil, fmt.Errorf("evaluating %q: %w", e.Source, err)
	}
	v, err := nativeValue(out)
	if err != nil {
		return nil, fmt.Errorf("evaluating %q: %w", e.Source, err)
	}
	return v, nil
}

// EvalBool evaluates an expression that must give a bool.
func (e *Expr) EvalBool(ctx context.Context, vars map[string]any) (bool, error) {
	v, err := e.Eval(ctx, vars)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("evaluating %q: got %s, want a bool", e.Source, describe(v))
	}
	return b, nil
}

// EvalString evaluates an expression that must give a string or a number.
// Numbers are formatted without exponent: 42 and 42.0 give "42".
func (e *Expr) EvalString(ctx context.Context, vars map[string]any) (string, error) {
	v, err := e.Eval(ctx, vars)
	if err != nil {
		return "", err
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), nil
	}
	return "", fmt.Errorf("evaluating %q: got %s, want a string or a number", e.Source, describe(v))
}

// describe names the type of an evaluation result for error messages.
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a bool"
	case string:
		return "a string"
	case int64, uint64, float64:
		return "a number"
	case []byte:
		return "bytes"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}

// nativeValue converts a CEL value into a plain Go value.
func nativeValue(v ref.Val) (any, error) {
	switch v := v.(type) {
	case types.Null:
		return nil, nil
	case types.Bool:
		return bool(v), nil
	case types.Int:
		return int64(v), nil
	case types.Uint:
		return uint64(v), nil
	case types.Double:
		f := float64(v)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("result %v is not a finite number", f)
		}
		return f, nil
	case types.String:
		return string(v), nil
	case types.Bytes:
		return []byte(v), nil
	case types.Timestamp:
		return v.Time.UTC().Format(time.RFC3339Nano), nil
	case types.Duration:
		return v.Duration.String(), nil
	case traits.Mapper:
		out := map[string]any{}
		for it := v.Iterator(); it.HasNext() == types.True; {
			k := it.Next()
			key, err := nativeValue(k)
			if err != nil {
				return nil, err
			}
			var name string
			switch key := key.(type) {
			case string:
				name = key
			case int64, uint64, bool:
				name = fmt.Sprint(key)
			default:
				return nil, fmt.Errorf("map key %s cannot be a JSON object key", describe(key))
			}
			elem, err := nativeValue(v.Get(k))
			if err != nil {
				return nil, err
			}
			out[name] = elem
		}
		return out, nil
	case traits.Lister:
		out := []any{}
		for it := v.Iterator(); it.HasNext() == types.True; {
			elem, err := nativeValue(it.Next())
			if err != nil {
				return nil, err
			}
			out = append(out, elem)
		}
		return out, nil
	case *types.Err:
		return nil, v
	}
	return nil, fmt.Errorf("result of type %s cannot be converted to JSON", v.Type().TypeName())
}
