package ordo_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordotype"
)

// orderFulfilmentYAML is the definition orderFulfilmentDSL builds, written
// as a template with the same values spelled differently.
const orderFulfilmentYAML = `
workflow: order-fulfilment
description: Pay, reserve and label, ship, notify.
idempotencyKey: input.orderId
businessKey: input.orderId
retry: {maxAttempts: 5, initialInterval: PT1S, maxInterval: 60s, jitter: 0}
timeout: P1D
onFailure: compensate
steps:
  - id: payment
    task: {queue: payment}
    compensate: {task: {queue: refunds}}
    onError: [apologise]
    timeout: 30s
    waitEffects: true
  - id: reserve-inventory
    after: payment
    task: {handler: reserveStock}
    retry: {maxAttempts: 10}
  - id: create-label
    after: [payment]
    http: {method: POST, url: "https://shipping.internal/labels"}
  - id: vip-gift
    after: [payment]
    when: input.vip == true
    task: {handler: vipGift}
  - id: ship
    after: [reserve-inventory, create-label, vip-gift]
    task: {handler: ship}
  - id: cool-off
    after: ship
    timer: {duration: 2h}
  - id: notify
    after: cool-off
    task: {handler: notify}
  - id: apologise
    task: {handler: apologise}
`

func orderFulfilmentDSL() *ordo.WorkflowBuilder {
	return ordo.NewWorkflow("order-fulfilment").
		Description("Pay, reserve and label, ship, notify.").
		IdempotencyKey("input.orderId").
		BusinessKey("input.orderId").
		Retry(ordo.RetryPolicy{MaxAttempts: 5, InitialInterval: time.Second, MaxInterval: time.Minute, Jitter: -1}).
		Timeout(24 * time.Hour).
		OnFailure(ordo.FailureCompensate).
		Step(ordo.QueueTask("payment", "payment").
			Compensate(ordo.QueueTask("", "refunds")).
			OnError("apologise").
			Timeout(30 * time.Second).
			WaitEffects()).
		Step(ordo.Task("reserve-inventory", "reserveStock").After("payment").Retry(ordo.RetryPolicy{MaxAttempts: 10})).
		Step(ordo.HTTPStep("create-label", "POST", "https://shipping.internal/labels").After("payment")).
		Step(ordo.Task("vip-gift", "vipGift").After("payment").When("input.vip == true")).
		Step(ordo.Task("ship", "ship").After("reserve-inventory", "create-label", "vip-gift")).
		Step(ordo.Timer("cool-off", 2*time.Hour).After("ship")).
		Step(ordo.Task("notify", "notify").After("cool-off")).
		Step(ordo.Task("apologise", "apologise"))
}

func TestWorkflowBuilder_SameAsTemplate(t *testing.T) {
	t.Parallel()

	built, err := orderFulfilmentDSL().Build()
	require.NoError(t, err)
	parsed, err := ordo.ParseDefinition([]byte(orderFulfilmentYAML), "order.yaml")
	require.NoError(t, err)

	require.Equal(t, "order-fulfilment", built.Name())
	require.Equal(t, string(parsed.JSON()), string(built.JSON()))
	require.Equal(t, parsed.Hash(), built.Hash())

	// The canonical JSON is itself a template for the same definition.
	again, err := ordo.ParseDefinition(built.JSON(), "")
	require.NoError(t, err)
	require.Equal(t, built.Hash(), again.Hash())

	// Changing anything changes the hash.
	other, err := orderFulfilmentDSL().Step(ordo.Task("audit", "audit").After("notify")).Build()
	require.NoError(t, err)
	require.NotEqual(t, built.Hash(), other.Hash())
}

func TestWorkflowBuilder_Minimal(t *testing.T) {
	t.Parallel()

	// A zero retry policy sets nothing, as if Retry was not called.
	built := ordo.NewWorkflow("minimal").Retry(ordo.RetryPolicy{}).Step(ordo.Task("a", "a").Retry(ordo.RetryPolicy{})).MustBuild()
	parsed, err := ordo.ParseDefinition([]byte("workflow: minimal\nsteps: [{id: a, task: {handler: a}}]"), "")
	require.NoError(t, err)
	require.Equal(t, parsed.Hash(), built.Hash())
	require.JSONEq(t, `{"workflow":"minimal","steps":[{"id":"a","task":{"handler":"a"}}]}`, string(built.JSON()))
}

func TestWorkflowBuilder_Invalid(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		builder *ordo.WorkflowBuilder
		want    string
	}{
		{
			"UnknownStep",
			ordo.NewWorkflow("w").Step(ordo.Task("label", "h")).Step(ordo.Task("ship", "h").After("labl")),
			`step "ship": after: unknown step "labl" (did you mean "label"?)`,
		},
		{
			"Everything",
			ordo.NewWorkflow("Bad Name").
				IdempotencyKey("input.").
				Retry(ordo.RetryPolicy{MaxAttempts: -1, Jitter: 2}).
				OnFailure("retry").
				Step(ordo.Task("a", "h").When("1 + 1").Timeout(-time.Second)).
				Step(ordo.HTTPStep("b", "FETCH", "not a url").After("b")).
				Step(ordo.Timer("c", 0).Compensate(ordo.Task("undo", "h").After("a"))),
			`workflow: invalid name "Bad Name": use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit` + "\n" +
				`idempotencyKey: invalid expression at column 7: Syntax error: no viable alternative at input '.'` + "\n" +
				`retry.maxAttempts: must be at least 1, got -1` + "\n" +
				`retry.jitter: must be between 0 and 1, got 2` + "\n" +
				`onFailure: unknown mode "retry" (use fail, review or compensate)` + "\n" +
				`step "a": when: expression must give a bool, not int` + "\n" +
				`step "a": timeout: must not be negative` + "\n" +
				`step "b": http.method: unknown method "FETCH" (use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)` + "\n" +
				`step "b": http.url: must be an absolute http or https URL, got "not a url"` + "\n" +
				`step "c": timer: set duration (how long to wait) or until (a deadline)` + "\n" +
				`step "c": compensate.id: not allowed in a compensation step` + "\n" +
				`step "c": compensate.after: not allowed in a compensation step` + "\n" +
				`step "b": after: step "b" depends on itself`,
		},
		{
			"NoSteps",
			ordo.NewWorkflow("w"),
			`steps: at least one step is required`,
		},
		{
			"Cycle",
			ordo.NewWorkflow("w").Step(ordo.Task("a", "h").After("b")).Step(ordo.Task("b", "h").After("a")),
			`step "a": after: dependency cycle: "a" comes after "b", "b" after "a"`,
		},
		{
			"NestedCompensation",
			ordo.NewWorkflow("w").Step(ordo.Task("a", "h").Compensate(selfCompensating())),
			`step "a": compensate.compensate: not allowed in a compensation step`,
		},
		{
			"NilStep",
			ordo.NewWorkflow("w").Step(nil),
			`building workflow "w": step 0 is nil: invalid`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.builder.Build()
			require.ErrorIs(t, err, ordotype.ErrInvalid)
			require.EqualError(t, err, tt.want)
			require.Panics(t, func() { tt.builder.MustBuild() })
		})
	}
}

// selfCompensating returns a step that is its own compensation.
func selfCompensating() *ordo.StepBuilder {
	s := ordo.Task("", "h")
	return s.Compensate(s)
}

func TestWorkflowBuilder_Problems(t *testing.T) {
	t.Parallel()

	_, err := ordo.NewWorkflow("w").Step(ordo.Task("a", "h").After("nope")).Build()
	var verr *ordo.ValidationError
	require.True(t, errors.As(err, &verr))
	require.Equal(t, []ordo.ValidationProblem{{Step: "a", Field: "after", Message: `unknown step "nope"`}}, verr.Problems)
}

func TestWorkflowBuilder_Reuse(t *testing.T) {
	t.Parallel()

	b := ordo.NewWorkflow("grow").Step(ordo.Task("a", "h"))
	first := b.MustBuild()
	second := b.Step(ordo.Task("b", "h").After("a")).MustBuild()
	require.NotEqual(t, first.Hash(), second.Hash())
	require.Equal(t, first.Hash(), ordo.NewWorkflow("grow").Step(ordo.Task("a", "h")).MustBuild().Hash())

	// JSON returns a copy.
	j := first.JSON()
	j[0] = 'x'
	require.Equal(t, byte('{'), first.JSON()[0])
}

func TestLoadDefinition(t *testing.T) {
	t.Parallel()

	path := filepath.Join("internal", "definition", "testdata", "valid", "order-fulfilment.yaml")
	d, err := ordo.LoadDefinition(path)
	require.NoError(t, err)
	require.Equal(t, "order-fulfilment", d.Name())
	require.Equal(t, d.Hash(), ordo.MustLoadDefinition(path).Hash())

	_, err = ordo.LoadDefinition(filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)

	bad := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("workflow: bad\nsteps:\n  - id: a\n    aftr: b\n    task: {queue: q}\n"), 0o600))
	_, err = ordo.LoadDefinition(bad)
	require.ErrorIs(t, err, ordotype.ErrInvalid)
	require.EqualError(t, err, bad+`:4:5: step "a": aftr: unknown field (did you mean "after"?)`)
	require.Panics(t, func() { ordo.MustLoadDefinition(bad) })
}

func ExampleNewWorkflow() {
	def, err := ordo.NewWorkflow("order-fulfilment").
		IdempotencyKey("input.orderId").
		Step(ordo.Task("payment", "charge").Compensate(ordo.Task("", "refund"))).
		Step(ordo.Task("reserve", "reserveStock").After("payment")).
		Step(ordo.HTTPStep("label", "POST", "https://shipping.internal/labels").After("payment")).
		Step(ordo.Task("ship", "ship").After("reserve", "label")).
		Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(def.JSON()))
	// Output:
	// {"workflow":"order-fulfilment","idempotencyKey":"input.orderId","steps":[{"id":"payment","task":{"handler":"charge"},"compensate":{"task":{"handler":"refund"}}},{"id":"reserve","after":["payment"],"task":{"handler":"reserveStock"}},{"id":"label","after":["payment"],"http":{"method":"POST","url":"https://shipping.internal/labels"}},{"id":"ship","after":["reserve","label"],"task":{"handler":"ship"}}]}
}

func ExampleParseDefinition() {
	_, err := ordo.ParseDefinition([]byte(`
workflow: order-fulfilment
steps:
  - id: payment
    task: {queue: payment}
  - id: ship
    after: [paymnet]
    task: {queue: shipping}
`), "order.yaml")
	fmt.Println(err)
	// Output:
	// order.yaml:7:13: step "ship": after: unknown step "paymnet" (did you mean "payment"?)
}
