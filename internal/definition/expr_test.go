package definition

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// decode decodes JSON the way the engine hands input and state to
// expressions.
func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	require.NoError(t, json.Unmarshal([]byte(s), &v))
	return v
}

func TestExpr_Eval(t *testing.T) {
	t.Parallel()

	vars := map[string]any{
		"input":   decode(t, `{"orderId": "o-1", "number": 42, "price": 9.5, "vip": true, "items": [{"sku": "a"}, {"sku": "b"}]}`),
		"state":   decode(t, `{"tries": 2}`),
		"outputs": map[string]any{"charge": decode(t, `{"ok": true, "amount": 100}`), "ask-new-card": nil},
	}
	tests := []struct {
		source string
		want   any
	}{
		{`input.orderId`, "o-1"},
		{`input.number`, 42.0},
		{`input.number + 1.0`, 43.0},
		{`1 + 2`, int64(3)},
		{`3u`, uint64(3)},
		{`input.vip && state.tries < 3`, true},
		{`outputs.charge.ok`, true},
		{`outputs["ask-new-card"]`, nil},
		{`input.items.map(i, i.sku)`, []any{"a", "b"}},
		{`{"id": input.orderId, "n": size(input.items), 1: "one"}`, map[string]any{"id": "o-1", "n": int64(2), "1": "one"}},
		{`timestamp("2030-01-02T03:04:05Z")`, "2030-01-02T03:04:05Z"},
		{`duration("90s")`, "1m30s"},
		{`b"hi"`, []byte("hi")},
		{`has(input.missing)`, false},
	}
	for _, tt := range tests {
		t.Run(tt.source, func(t *testing.T) {
			t.Parallel()
			e, err := compileExpr(tt.source, resultAny)
			require.NoError(t, err)
			got, err := e.Eval(context.Background(), vars)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			_, err = json.Marshal(got)
			require.NoError(t, err)
		})
	}
}

func TestExpr_EvalErrors(t *testing.T) {
	t.Parallel()

	input := decode(t, `{"orderId": "o-1", "n": 1, "list": [1, 2, 3]}`)
	tests := []struct {
		name   string
		source string
		vars   map[string]any
		want   string
	}{
		{"MissingField", `input.customerId`, map[string]any{"input": input}, `evaluating "input.customerId": no such key: customerId`},
		{"NullInput", `input.orderId`, nil, `evaluating "input.orderId"`},
		{"MissingOutput", `outputs.charge.ok`, map[string]any{"input": input}, `evaluating "outputs.charge.ok": no such key: charge`},
		{"DivideByZero", `1 / (int(input.n) - 1)`, map[string]any{"input": input}, `evaluating "1 / (int(input.n) - 1)": division by zero`},
		{"NotFinite", `1.0 / 0.0`, nil, `result +Inf is not a finite number`},
		{"CostLimit", `[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, [1,2,3,4,5,6,7,8,9,10].all(f, a+b+c+d+e+f > 0))))))`, nil, "cost limit exceeded"},
		{"Type", `type(1)`, nil, "cannot be converted to JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := compileExpr(tt.source, resultAny)
			require.NoError(t, err)
			_, err = e.Eval(context.Background(), tt.vars)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestExpr_Cancelled(t *testing.T) {
	t.Parallel()

	e, err := compileExpr(`input.all(x, input.all(y, x + y > 0))`, resultBool)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	list := make([]any, 500)
	for i := range list {
		list[i] = float64(i + 1)
	}
	_, err = e.Eval(ctx, map[string]any{"input": list})
	require.ErrorIs(t, err, context.Canceled)
}

func TestExpr_EvalBool(t *testing.T) {
	t.Parallel()

	w, err := Parse([]byte(`
workflow: gifts
steps:
  - {id: pay, task: {queue: q}}
  - {id: gift, after: pay, when: input.vip == true, task: {queue: q}}
  - {id: upsell, after: pay, when: input.total, task: {queue: q}}
`), "")
	require.NoError(t, err)
	when := w.Step("gift").When

	got, err := when.EvalBool(context.Background(), map[string]any{"input": decode(t, `{"vip": true}`)})
	require.NoError(t, err)
	require.True(t, got)

	got, err = when.EvalBool(context.Background(), map[string]any{"input": decode(t, `{"vip": false}`)})
	require.NoError(t, err)
	require.False(t, got)

	_, err = when.EvalBool(context.Background(), map[string]any{"input": decode(t, `{}`)})
	require.EqualError(t, err, `evaluating "input.vip == true": no such key: vip`)

	// A dyn condition type-checks, but must give a bool when evaluated.
	_, err = w.Step("upsell").When.EvalBool(context.Background(), map[string]any{"input": decode(t, `{"total": 12}`)})
	require.EqualError(t, err, `evaluating "input.total": got a number, want a bool`)
}

func TestExpr_EvalString(t *testing.T) {
	t.Parallel()

	w, err := Parse([]byte(`
workflow: keys
idempotencyKey: input.orderId
businessKey: '"order-" + input.ref'
steps:
  - {id: a, task: {queue: q}}
`), "")
	require.NoError(t, err)

	tests := []struct {
		name  string
		input string
		want  string
		err   string
	}{
		{"String", `{"orderId": "o-1"}`, "o-1", ""},
		{"Integer", `{"orderId": 42}`, "42", ""},
		{"BigInteger", `{"orderId": 12345678901234567890}`, "12345678901234567000", ""},
		{"Fraction", `{"orderId": 0.5}`, "0.5", ""},
		{"Bool", `{"orderId": true}`, "", `evaluating "input.orderId": got a bool, want a string or a number`},
		{"Null", `{"orderId": null}`, "", `evaluating "input.orderId": got null, want a string or a number`},
		{"Missing", `{}`, "", `evaluating "input.orderId": no such key: orderId`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := w.IdempotencyKey.EvalString(context.Background(), map[string]any{"input": decode(t, tt.input)})
			if tt.err != "" {
				require.EqualError(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	got, err := w.BusinessKey.EvalString(context.Background(), map[string]any{"input": decode(t, `{"ref": "A7"}`)})
	require.NoError(t, err)
	require.Equal(t, "order-A7", got)
}

func TestExpr_Nil(t *testing.T) {
	t.Parallel()

	var e *Expr
	_, err := e.Eval(context.Background(), nil)
	require.EqualError(t, err, "evaluating expression: no expression")
}

func TestExpr_Concurrent(t *testing.T) {
	t.Parallel()

	e, err := compileExpr(`input.n * 2.0`, resultAny)
	require.NoError(t, err)
	done := make(chan struct{})
	for i := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				got, err := e.Eval(context.Background(), map[string]any{"input": map[string]any{"n": float64(i)}})
				if err != nil || got != float64(2*i) {
					t.Errorf("got %v, %v", got, err)
					return
				}
			}
		}()
	}
	timeout := time.After(10 * time.Second)
	for range 8 {
		select {
		case <-done:
		case <-timeout:
			t.Fatal("evaluations did not finish")
		}
	}
}
