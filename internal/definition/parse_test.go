package definition

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// mustParseFile parses a file under testdata/valid.
func mustParseFile(t *testing.T, name string) *Workflow {
	t.Helper()
	data, err := os.ReadFile("testdata/valid/" + name)
	require.NoError(t, err)
	w, err := Parse(data, name)
	require.NoError(t, err)
	return w
}

// ids returns the ids of steps.
func ids(steps []*Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.ID
	}
	return out
}

func TestParse_OrderFulfilment(t *testing.T) {
	t.Parallel()

	w := mustParseFile(t, "order-fulfilment.yaml")

	require.Equal(t, "order-fulfilment", w.Name)
	require.Equal(t, FailureCompensate, w.OnFailure)
	require.Equal(t, 24*time.Hour, w.Timeout)
	require.Equal(t, "input.orderId", w.IdempotencyKey.Source)
	require.Equal(t, "input.orderId", w.BusinessKey.Source)
	require.Nil(t, w.ConcurrencyKey)
	require.Equal(t, RetryPolicy{MaxAttempts: 5, InitialInterval: time.Second, BackoffFactor: 2, MaxInterval: time.Minute, Jitter: 0.2}, w.Retry)

	require.Equal(t, []string{"payment", "reserve-inventory", "create-label", "vip-gift", "ship", "notify"}, ids(w.Steps))
	require.Equal(t, []string{"payment"}, ids(w.Roots))
	for i, s := range w.Steps {
		require.Equal(t, i, s.Index)
		require.Same(t, s, w.Step(s.ID))
		require.False(t, s.ErrorPathOnly)
	}
	require.Nil(t, w.Step("nope"))

	payment := w.Step("payment")
	require.Equal(t, KindTask, payment.Kind)
	require.Equal(t, &TaskSpec{Queue: "payment", Command: "charge"}, payment.Task)
	require.Equal(t, "payment", payment.HandlerKey())
	require.Empty(t, payment.After)
	require.Equal(t, []string{"reserve-inventory", "create-label", "vip-gift"}, payment.Dependents)
	require.Equal(t, 30*time.Second, payment.Timeout)
	require.Equal(t, 11, payment.Line)
	require.Equal(t, 5, payment.Column)
	require.Equal(t, "payment.compensate", payment.Compensate.ID)
	require.Equal(t, -1, payment.Compensate.Index)
	require.Equal(t, &TaskSpec{Queue: "payment", Command: "refund"}, payment.Compensate.Task)
	require.Same(t, payment.Compensate, w.Step("payment.compensate"))

	reserve := w.Step("reserve-inventory")
	require.Equal(t, "reserveStock", reserve.HandlerKey())
	require.Equal(t, []string{"payment"}, reserve.After)

	label := w.Step("create-label")
	require.Equal(t, KindHTTP, label.Kind)
	require.Empty(t, label.HandlerKey())
	require.Equal(t, &HTTPSpec{
		Method:  "POST",
		URL:     "https://shipping.internal/labels",
		Headers: map[string]string{"Content-Type": "application/json"},
		Timeout: 10 * time.Second,
	}, label.HTTP)

	gift := w.Step("vip-gift")
	require.Equal(t, "input.vip == true", gift.When.Source)

	ship := w.Step("ship")
	require.Equal(t, []string{"reserve-inventory", "create-label", "vip-gift"}, ship.After)
	require.Equal(t, []string{"notify"}, ship.Dependents)
	// Step fields over workflow fields over defaults.
	require.Equal(t, RetryPolicy{MaxAttempts: 10, InitialInterval: time.Second, BackoffFactor: 2, MaxInterval: 5 * time.Minute, Jitter: 0.2}, ship.Retry)
	require.Equal(t, w.Retry, w.Step("notify").Retry)
}

func TestParse_AllKinds(t *testing.T) {
	t.Parallel()

	w := mustParseFile(t, "order-fulfilment-full.yaml")

	require.Equal(t, []string{
		"charge", "reserve", "label", "gift", "ship", "approve-return-window", "warranty", "cool-off",
		"ask-new-card", "wait-card", "give-up",
	}, ids(w.Steps))
	require.Equal(t, []string{"charge"}, ids(w.Roots))
	require.Equal(t, FailureReview, w.OnFailure)
	require.Equal(t, 30*24*time.Hour, w.Timeout)
	require.Equal(t, "input.customerId", w.ConcurrencyKey.Source)

	charge := w.Step("charge")
	require.Equal(t, []ErrorRoute{{Next: []string{"ask-new-card"}}}, charge.OnError)
	require.True(t, charge.WaitEffects)
	require.Equal(t, 3, charge.Retry.MaxAttempts)

	human := w.Step("approve-return-window")
	require.Equal(t, KindHuman, human.Kind)
	require.Equal(t, "manager", human.Human.Role)
	require.JSONEq(t, `{"type":"object","properties":{"days":{"type":"integer","minimum":0}},"required":["days"]}`, string(human.Human.Form))

	child := w.Step("warranty")
	require.Equal(t, KindWorkflow, child.Kind)
	require.Equal(t, "warranty", child.Child.Name)
	require.NotNil(t, child.Child.Input)

	timer := w.Step("cool-off")
	require.Equal(t, KindTimer, timer.Kind)
	require.Equal(t, &TimerSpec{Duration: 2 * time.Hour}, timer.Timer)

	wait := w.Step("wait-card")
	require.Equal(t, KindReceive, wait.Kind)
	require.Equal(t, "CreditCardUpdated", wait.Receive.Message)
	require.Equal(t, "input.orderId", wait.Receive.Correlate.Source)
	require.Equal(t, 168*time.Hour, wait.Receive.Timeout)
	require.Equal(t, []string{"give-up"}, wait.OnTimeout)

	for _, id := range []string{"ask-new-card", "wait-card", "give-up"} {
		require.True(t, w.Step(id).ErrorPathOnly, id)
	}
	for _, id := range []string{"charge", "ship", "cool-off"} {
		require.False(t, w.Step(id).ErrorPathOnly, id)
	}
}

func TestParse_JSON(t *testing.T) {
	t.Parallel()

	src := "{\n\t\"workflow\": \"json-flow\",\n\t\"steps\": [\n\t\t{\"id\": \"a\", \"task\": {\"handler\": \"h\"}},\n" +
		"\t\t{\"id\": \"b\", \"after\": \"a\", \"timer\": {\"until\": \"timestamp(input.deadline)\"}}\n\t]\n}\n"
	w, err := Parse([]byte(src), "flow.json")
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, ids(w.Steps))
	require.Equal(t, []string{"a"}, w.Step("b").After)
	require.Equal(t, 5, w.Step("b").Line)
	require.Equal(t, "timestamp(input.deadline)", w.Step("b").Timer.Until.Source)
}

func TestParse_TopologicalOrder(t *testing.T) {
	t.Parallel()

	// Declared out of order: each step still comes after its dependencies,
	// and independent steps keep file order.
	w, err := Parse([]byte(`
workflow: out-of-order
steps:
  - {id: d, after: [b, c], task: {queue: q}}
  - {id: c, after: a, task: {queue: q}}
  - {id: b, after: a, task: {queue: q}}
  - {id: x, task: {queue: q}}
  - {id: a, task: {queue: q}}
`), "")
	require.NoError(t, err)
	require.Equal(t, []string{"x", "a", "c", "b", "d"}, ids(w.Steps))
	require.Equal(t, []string{"x", "a"}, ids(w.Roots))
	require.Equal(t, []string{"c", "b"}, w.Step("a").Dependents)
}

func TestParse_ErrorPaths(t *testing.T) {
	t.Parallel()

	w, err := Parse([]byte(`
workflow: error-paths
steps:
  - {id: charge, task: {queue: payment}, onError: [apologise]}
  - {id: apologise, task: {queue: mail}}
  - {id: close, after: apologise, task: {queue: crm}}
  - {id: audit, after: [charge, close], task: {queue: crm}}
`), "")
	require.NoError(t, err)
	require.Equal(t, []string{"charge"}, ids(w.Roots))
	require.False(t, w.Step("charge").ErrorPathOnly)
	require.True(t, w.Step("apologise").ErrorPathOnly)
	require.True(t, w.Step("close").ErrorPathOnly)
	// audit has a normal path through charge.
	require.False(t, w.Step("audit").ErrorPathOnly)
}

func TestParse_FormIsCanonical(t *testing.T) {
	t.Parallel()

	w, err := Parse([]byte(`
workflow: approval
steps:
  - id: approve
    human:
      role: manager
      form: {required: [ok], type: object, properties: {ok: {type: boolean}}}
`), "")
	require.NoError(t, err)
	require.Equal(t, `{"properties":{"ok":{"type":"boolean"}},"required":["ok"],"type":"object"}`, string(w.Step("approve").Human.Form))
	require.True(t, json.Valid(w.Source))
}

func TestParse_TooLarge(t *testing.T) {
	t.Parallel()

	data := make([]byte, MaxSourceSize+1)
	for i := range data {
		data[i] = ' '
	}
	_, err := Parse(data, "big.yaml")
	require.EqualError(t, err, "big.yaml: definition is 1048577 bytes, more than the limit of 1048576")
}

func TestParse_TooManySteps(t *testing.T) {
	t.Parallel()

	spec := &Spec{Workflow: "many"}
	for i := range MaxSteps + 1 {
		spec.Steps = append(spec.Steps, SpecStep{ID: fmt.Sprintf("s%d", i), Task: &TaskSpec{Queue: "q"}})
	}
	_, err := Compile(spec)
	require.EqualError(t, err, "steps: too many steps (1001); the limit is 1000")
}

func TestProblem_String(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		problem Problem
		want    string
	}{
		{"Full", Problem{File: "order.yaml", Line: 12, Column: 5, Step: "ship", Field: "after", Message: `unknown step "labl"`}, `order.yaml:12:5: step "ship": after: unknown step "labl"`},
		{"NoFile", Problem{Line: 12, Column: 5, Step: "ship", Field: "after", Message: `unknown step "labl"`}, `line 12:5: step "ship": after: unknown step "labl"`},
		{"NoPosition", Problem{Step: "ship", Field: "after", Message: `unknown step "labl"`}, `step "ship": after: unknown step "labl"`},
		{"NoColumn", Problem{File: "order.yaml", Line: 3, Message: "invalid YAML"}, `order.yaml:3: invalid YAML`},
		{"FileOnly", Problem{File: "order.yaml", Message: "definition is empty"}, `order.yaml: definition is empty`},
		{"WorkflowField", Problem{Line: 1, Column: 1, Field: "workflow", Message: "required"}, `line 1:1: workflow: required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.problem.String())
		})
	}
}

func TestParse_NoFileName(t *testing.T) {
	t.Parallel()

	_, err := Parse([]byte("workflow: x\nsteps:\n  - id: ship\n    after: labl\n    task: {queue: q}\n"), "")
	require.EqualError(t, err, `line 4:12: step "ship": after: unknown step "labl"`)
}

func TestParse_ProblemLimit(t *testing.T) {
	t.Parallel()

	var b strings.Builder
	b.WriteString("workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    after:\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "      - u%d\n", i)
	}
	_, err := Parse([]byte(b.String()), "many.yaml")
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	require.Len(t, verr.Problems, 101)
	require.Equal(t, `many.yaml:6:9: step "a": after: unknown step "u0"`, verr.Problems[0].String())
	require.Equal(t, `many.yaml:105:9: step "a": after: unknown step "u99"`, verr.Problems[99].String())
	require.Equal(t, "many.yaml: and 1900 more problems", verr.Problems[100].String())
}
