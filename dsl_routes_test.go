package ordo_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordotype"
)

// paymentDSL builds internal/definition/testdata/valid/payment.yaml.
func paymentDSL() *ordo.WorkflowBuilder {
	return ordo.NewWorkflow("payment").
		IdempotencyKey("input.orderId").
		ConcurrencyKey("input.customerId").
		MaxConcurrent(50).
		Timeout(8 * 24 * time.Hour).
		OnFailure(ordo.FailureCompensate).
		Step(ordo.QueueTask("reserve", "inventory").Command("reserve").
			Compensate(ordo.QueueTask("", "inventory").Command("release").Heartbeat(10 * time.Second))).
		Step(ordo.QueueTask("charge", "payment").Command("charge").
			After("reserve").
			Heartbeat(30*time.Second).
			Compensate(ordo.QueueTask("", "payment").Command("refund")).
			OnErrorCode([]string{"card_declined", "card_expired"}, "ask-new-card").
			CompensateOn("goods_unavailable").
			OnError("give-up")).
		Step(ordo.ChildWorkflow("ship", "shipping").ChildVersion(3).ChildInput(`{"orderId": input.orderId}`).After("charge")).
		Step(ordo.QueueTask("ask-new-card", "notifications").Command("update-card")).
		Step(ordo.Receive("wait-card", "CreditCardUpdated").
			Correlate("input.customerId").
			ReceiveTimeout(7*24*time.Hour).
			Broadcast().
			After("ask-new-card").
			OnTimeout("give-up").
			Next("charge", 3)).
		Step(ordo.QueueTask("give-up", "notifications").Command("payment-failed"))
}

func TestWorkflowBuilder_PaymentSameAsTemplate(t *testing.T) {
	t.Parallel()

	built, err := paymentDSL().Build()
	require.NoError(t, err)
	parsed, err := ordo.LoadDefinition(filepath.Join("internal", "definition", "testdata", "valid", "payment.yaml"))
	require.NoError(t, err)
	require.Equal(t, string(parsed.JSON()), string(built.JSON()))
	require.Equal(t, parsed.Hash(), built.Hash())

	// Each new setting is part of the hash.
	for name, b := range map[string]*ordo.WorkflowBuilder{
		"MaxConcurrent": paymentDSL().MaxConcurrent(51),
		"Heartbeat":     paymentDSL().Step(ordo.QueueTask("x", "q").Heartbeat(time.Second)),
		"Broadcast":     paymentDSL().Step(ordo.Receive("x", "m")),
		"ChildVersion":  paymentDSL().Step(ordo.ChildWorkflow("x", "c").ChildVersion(1)),
		"Route":         paymentDSL().Step(ordo.QueueTask("x", "q").CompensateOn("e")),
	} {
		other, err := b.Build()
		require.NoError(t, err, name)
		require.NotEqual(t, built.Hash(), other.Hash(), name)
	}
}

func TestWorkflowBuilder_OtherKindsSameAsTemplate(t *testing.T) {
	t.Parallel()

	form := json.RawMessage(`{"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}`)
	built, err := ordo.NewWorkflow("kinds").
		Step(ordo.TimerUntil("until", `timestamp(input.at)`)).
		Step(ordo.Human("approve", "manager").Form(form).After("until").Timeout(48 * time.Hour).OnTimeout("escalate")).
		Step(ordo.Task("escalate", "escalate")).
		Step(ordo.ChildWorkflow("child", "warranty").After("approve")).
		Step(ordo.Task("poll", "poll").After("child").When("!outputs.child.done").Next("child", 0)).
		Step(ordo.Task("fix", "fix").OnError("a").OnError("b").OnErrorCode(nil, "c").After("poll")).
		Step(ordo.Task("a", "a")).
		Step(ordo.Task("b", "b")).
		Step(ordo.Task("c", "c")).
		Build()
	require.NoError(t, err)
	parsed, err := ordo.ParseDefinition([]byte(`
workflow: kinds
steps:
  - {id: until, timer: {until: 'timestamp(input.at)'}}
  - id: approve
    after: until
    human: {role: manager, form: {properties: {ok: {type: boolean}}, required: [ok], type: object}}
    timeout: P2D
    onTimeout: escalate
  - {id: escalate, task: {handler: escalate}}
  - {id: child, after: approve, workflow: {name: warranty}}
  - {id: poll, after: child, task: {handler: poll}, when: '!outputs.child.done', next: child}
  - id: fix
    after: poll
    task: {handler: fix}
    onError: [{next: [a, b, c]}]
  - {id: a, task: {handler: a}}
  - {id: b, task: {handler: b}}
  - {id: c, task: {handler: c}}
`), "kinds.yaml")
	require.NoError(t, err)
	require.Equal(t, string(parsed.JSON()), string(built.JSON()))
	require.Equal(t, parsed.Hash(), built.Hash())
	require.Contains(t, string(built.JSON()), `"onError":["a","b","c"]`, "OnError calls add to one route")
	require.NotContains(t, string(built.JSON()), "maxIterations", "Next with 0 keeps the default")
}

func TestWorkflowBuilder_InvalidNewFields(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		builder *ordo.WorkflowBuilder
		want    string
	}{
		{
			"Routes",
			ordo.NewWorkflow("w").
				Step(ordo.Task("a", "h").OnError("b").OnErrorCode([]string{"x", ""}, "c").CompensateOn("x")).
				Step(ordo.Task("b", "h")).
				Step(ordo.Task("c", "h")),
			`step "a": onError: a route without codes matches every error, so only the last route may leave codes out` + "\n" +
				`step "a": onError.codes: an error code must not be empty` + "\n" +
				`step "a": onError.codes: code "x" is already matched by an earlier route`,
		},
		{
			"BackEdge",
			ordo.NewWorkflow("w").
				Step(ordo.Task("a", "h").Next("b", 0)).
				Step(ordo.Task("b", "h").After("a").Next("a", 1001)),
			`step "b": maxIterations: must be between 1 and 1000, got 1001` + "\n" +
				`step "a": next: "b" is not an earlier step of "a"; only a back-edge to an earlier step is allowed (one this step can be reached from through after, onError or onTimeout)`,
		},
		{
			"WrongKind",
			ordo.NewWorkflow("w").MaxConcurrent(-1).
				Step(ordo.Task("a", "h").Broadcast().Correlate("input.id").ReceiveTimeout(time.Second).Form(nil).ChildInput("input").ChildVersion(2)).
				Step(ordo.Timer("b", time.Second).Heartbeat(time.Second).Command("c").
					Compensate(ordo.HTTPStep("", "", "https://x").Broadcast())),
			`maxConcurrent: must not be negative (0 means no limit), got -1` + "\n" +
				`step "b": heartbeat: only task steps have a heartbeat, this is a timer step` + "\n" +
				`step "a": receive.broadcast: only a receive step has this; build the step with ordo.Receive` + "\n" +
				`step "a": receive.correlate: only a receive step has this; build the step with ordo.Receive` + "\n" +
				`step "a": receive.timeout: only a receive step has this; build the step with ordo.Receive` + "\n" +
				`step "a": human.form: only a human step has this; build the step with ordo.Human` + "\n" +
				`step "a": workflow.input: only a workflow step has this; build the step with ordo.ChildWorkflow` + "\n" +
				`step "a": workflow.version: only a workflow step has this; build the step with ordo.ChildWorkflow` + "\n" +
				`step "b": task.command: only a task step has this; build the step with ordo.Task or ordo.QueueTask` + "\n" +
				`step "b": compensate.receive.broadcast: only a receive step has this; build the step with ordo.Receive`,
		},
		{
			"OnlyMisuse",
			ordo.NewWorkflow("w").Step(ordo.Task("a", "h").Broadcast()),
			`step "a": receive.broadcast: only a receive step has this; build the step with ordo.Receive`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := tt.builder.Build()
			require.ErrorIs(t, err, ordotype.ErrInvalid)
			var verr *ordo.ValidationError
			require.True(t, errors.As(err, &verr))
			require.EqualError(t, err, tt.want)
		})
	}
}

func ExampleStepBuilder_OnErrorCode() {
	def, err := ordo.NewWorkflow("payment").
		Step(ordo.QueueTask("charge", "payment").
			OnErrorCode([]string{"card_declined", "card_expired"}, "ask-new-card").
			CompensateOn("goods_unavailable").
			OnError("give-up")).
		Step(ordo.QueueTask("ask-new-card", "notifications")).
		Step(ordo.Receive("wait-card", "CreditCardUpdated").
			Correlate("input.orderId").
			ReceiveTimeout(7*24*time.Hour).
			After("ask-new-card").
			OnTimeout("give-up").
			Next("charge", 3)).
		Step(ordo.QueueTask("give-up", "notifications")).
		Build()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(def.JSON()))
	// Output:
	// {"workflow":"payment","steps":[{"id":"charge","task":{"queue":"payment"},"onError":[{"codes":["card_declined","card_expired"],"next":["ask-new-card"]},{"codes":["goods_unavailable"],"compensate":true},{"next":["give-up"]}]},{"id":"ask-new-card","task":{"queue":"notifications"}},{"id":"wait-card","after":["ask-new-card"],"receive":{"message":"CreditCardUpdated","correlate":"input.orderId","timeout":"168h0m0s"},"onTimeout":["give-up"],"next":"charge","maxIterations":3},{"id":"give-up","task":{"queue":"notifications"}}]}
}
