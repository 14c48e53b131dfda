package executor

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/ordotype"
)

func queuesOf(d *Decision) []string {
	var out []string
	for _, t := range d.Tasks {
		out = append(out, string(t.Kind)+":"+t.Queue)
	}
	return out
}

func TestDecide_SagaCompensatesInReverseOrder(t *testing.T) {
	t.Parallel()
	def := mustParse(t, `
workflow: saga
onFailure: compensate
steps:
  - {id: a, task: {handler: a}, compensate: {task: {handler: undo-a}}}
  - {id: b, after: [a], task: {handler: b}, compensate: {task: {handler: undo-b}}}
  - {id: c, after: [b], task: {handler: c}, compensate: {task: {handler: undo-c}}}
  - {id: d, after: [c], task: {handler: d}, retry: {maxAttempts: 1}}
`)
	d := run(t, def, nil, Start{ID: "i1", Input: json.RawMessage(`{}`)})
	for _, id := range []string{"a", "b", "c"} {
		d = run(t, def, d.State, done(id, 1, `{"`+id+`":1}`))
	}
	d = run(t, def, d.State, StepDone{Step: "d", Attempt: 1, Err: &journal.Error{Message: "boom"}})
	require.Equal(t, []string{"step.failed:d", "workflow.compensating", "step.scheduled:c.compensate"}, types(d))
	require.Equal(t, []string{"step:undo-c"}, queuesOf(d))
	require.JSONEq(t, `{"input":{"b":1},"output":{"c":1}}`, string(d.State.Steps["c.compensate"].Input))

	var order []string
	for _, id := range []string{"c", "b", "a"} {
		order = append(order, id)
		d = run(t, def, d.State, done(id+".compensate", 1, `{}`))
		require.Equal(t, ordotype.StepCompensated, d.State.Steps[id].Status)
	}
	require.Equal(t, []string{"step.completed:a.compensate", "step.compensated:a", "workflow.compensated"}, types(d))
	require.Equal(t, ordotype.StatusCompensated, d.State.Status)
	require.Equal(t, []string{"c", "b", "a"}, order)
}

func TestDecide_FailedCompensationParks(t *testing.T) {
	t.Parallel()
	def := mustParse(t, `
workflow: saga
onFailure: compensate
steps:
  - {id: a, task: {handler: a}, compensate: {task: {handler: undo-a}, retry: {maxAttempts: 1}}}
  - {id: b, after: [a], task: {handler: b}, retry: {maxAttempts: 1}}
`)
	d := run(t, def, nil, Start{ID: "i1"})
	d = run(t, def, d.State, done("a", 1, `{}`))
	d = run(t, def, d.State, StepDone{Step: "b", Attempt: 1, Err: &journal.Error{Message: "boom"}})
	d = run(t, def, d.State, StepDone{Step: "a.compensate", Attempt: 1, Err: &journal.Error{Message: "refund failed"}})
	require.Equal(t, ordotype.StatusReview, d.State.Status)
	d = run(t, def, d.State, Resubmit{})
	require.Equal(t, []string{"workflow.resubmitted", "step.scheduled:a.compensate"}, types(d))
	d = run(t, def, d.State, done("a.compensate", 2, `{}`))
	require.Equal(t, ordotype.StatusCompensated, d.State.Status)
}

func TestDecide_CancelCompensates(t *testing.T) {
	t.Parallel()
	def := mustParse(t, `
workflow: saga
onFailure: compensate
steps:
  - {id: a, task: {handler: a}, compensate: {task: {handler: undo-a}}}
  - {id: wait, after: [a], timer: {duration: 168h}}
`)
	d := run(t, def, nil, Start{ID: "i1"})
	d = run(t, def, d.State, done("a", 1, `{}`))
	d = run(t, def, d.State, Cancel{Reason: "customer asked"})
	require.Equal(t, []string{"workflow.compensating", "step.scheduled:a.compensate"}, types(d))
	d = run(t, def, d.State, done("a.compensate", 1, `{}`))
	require.Equal(t, ordotype.StatusCancelled, d.State.Status)
	require.Equal(t, "customer asked", d.State.Error.Message)
}

func TestDecide_BackEdgeLoops(t *testing.T) {
	t.Parallel()
	def := mustParse(t, `
workflow: pay
steps:
  - id: charge
    task: {handler: charge}
    retry: {maxAttempts: 1}
    onError: [{codes: [declined], next: ask}]
  - {id: ship, after: [charge], task: {handler: ship}}
  - {id: ask, task: {handler: ask}}
  - id: wait
    after: [ask]
    receive: {message: CardUpdated, correlate: input.order, timeout: 168h}
    next: charge
    maxIterations: 2
`)
	d := run(t, def, nil, Start{ID: "i1", Input: json.RawMessage(`{"order":"o-1"}`)})
	for i := 1; i <= 2; i++ {
		d = run(t, def, d.State, StepDone{Step: "charge", Attempt: i, Err: &journal.Error{Message: "no", Code: "declined"}})
		d = run(t, def, d.State, done("ask", i, `{}`))
		require.Equal(t, []string{"receive:CardUpdated\x1fo-1"}, queuesOf(d))
		require.Equal(t, "o-1", d.State.Steps["wait"].Key)
		d = run(t, def, d.State, MessageReceived{Step: "wait", Attempt: i, MessageID: "m" + string(rune('0'+i)), Payload: json.RawMessage(`{"card":"new"}`)})
		require.Equal(t, []string{"step.completed:wait", "workflow.looped:wait", "step.scheduled:charge"}, types(d))
		require.Equal(t, i, d.State.Loops["wait"])
		require.JSONEq(t, `{"card":"new"}`, string(d.State.Steps["charge"].Input))
	}
	// The third time the back-edge would be taken, maxIterations stops it.
	d = run(t, def, d.State, StepDone{Step: "charge", Attempt: 3, Err: &journal.Error{Message: "no", Code: "declined"}})
	d = run(t, def, d.State, done("ask", 3, `{}`))
	d = run(t, def, d.State, MessageReceived{Step: "wait", Attempt: 3, MessageID: "m3", Payload: json.RawMessage(`{}`)})
	require.Equal(t, ordotype.StatusFailed, d.State.Status)
	require.Equal(t, "max_iterations", d.State.Error.Code)

	// A duplicate message is stale.
	_, err := Decide(t.Context(), def, d.State, MessageReceived{Step: "wait", Attempt: 3, MessageID: "m1"}, t0, nil)
	require.True(t, IsStale(err))
}

func TestDecide_ReceiveTimeoutTakesOnTimeout(t *testing.T) {
	t.Parallel()
	def := mustParse(t, `
workflow: wait
steps:
  - id: wait
    receive: {message: Paid, correlate: input.order, timeout: 1h}
    onTimeout: give-up
  - {id: done, after: [wait], task: {handler: done}}
  - {id: give-up, task: {handler: give-up}}
`)
	d := run(t, def, nil, Start{ID: "i1", Input: json.RawMessage(`{"order":7}`)})
	require.Equal(t, ordotype.StatusWaiting, d.State.Status)
	require.Equal(t, t0, d.Tasks[0].DueAt, "due at once, to look for kept messages")
	armed := run(t, def, d.State, WaitArmed{Step: "wait", Attempt: 1})
	require.Empty(t, armed.Events)
	require.Equal(t, t0.Add(3600e9), armed.Tasks[0].DueAt, "armed: due when the wait times out")
	d = run(t, def, d.State, StepDone{Step: "wait", Attempt: 1, Err: &journal.Error{Message: "no message", Code: "timeout"}})
	require.Equal(t, []string{"step.failed:wait", "step.scheduled:give-up"}, types(d))
}

func TestDecide_DeferredAndDeadline(t *testing.T) {
	t.Parallel()
	def := mustParse(t, `
workflow: per-customer
concurrencyKey: input.customer
maxConcurrent: 3
timeout: 1h
steps:
  - {id: a, task: {handler: a}}
`)
	d := run(t, def, nil, Start{ID: "i1", Input: json.RawMessage(`{"customer":"c-1"}`)})
	require.Equal(t, ordotype.StatusDeferred, d.State.Status)
	require.Equal(t, []string{"per-customer/key/c-1", "per-customer/max"}, d.State.Slots)
	require.Equal(t, []string{"admit:per-customer/key/c-1"}, queuesOf(d))
	require.Equal(t, 3, SlotLimit(def, "per-customer/max"))
	require.Equal(t, 1, SlotLimit(def, "per-customer/key/c-1"))

	d = run(t, def, d.State, Admit{})
	require.Equal(t, []string{"workflow.admitted", "step.scheduled:a"}, types(d))
	require.Equal(t, []string{"step:" + QueueDeadline, "step:a"}, queuesOf(d))

	d2 := run(t, def, d.State, Deadline{})
	require.Equal(t, ordotype.StatusFailed, d2.State.Status)
	require.Equal(t, "timeout", d2.State.Error.Code)
	require.Equal(t, []string{"step:" + QueueRelease}, queuesOf(d2), "an instance that ends frees its slots")

	d = run(t, def, d.State, done("a", 1, `{}`))
	require.Equal(t, ordotype.StatusCompleted, d.State.Status)
	_, err := Decide(t.Context(), def, d.State, Deadline{}, t0, nil)
	require.True(t, IsStale(err))
}

func TestDecide_ChildWorkflow(t *testing.T) {
	t.Parallel()
	def := mustParse(t, `
workflow: parent
steps:
  - {id: child, workflow: {name: kid, version: 2, input: "{'n': input.n + 1}"}}
  - {id: after, after: [child], task: {handler: after}}
`)
	d := run(t, def, nil, Start{ID: "p1", Input: json.RawMessage(`{"n":1}`)})
	require.Equal(t, []string{"step:" + QueueWorkflow}, queuesOf(d))
	var ct ChildTask
	require.NoError(t, json.Unmarshal(d.Tasks[0].Payload, &ct))
	require.Equal(t, ChildTask{Workflow: "kid", Version: 2, Input: json.RawMessage(`{"n":2}`)}, ct)

	d = run(t, def, d.State, ChildStarted{Step: "child", Attempt: 1, ChildID: "c1"})
	require.Equal(t, ordotype.StepWaiting, d.State.Steps["child"].Status)
	require.Equal(t, ordotype.StatusWaiting, d.State.Status)

	_, err := Decide(t.Context(), def, d.State, ChildDone{Step: "child", Attempt: 1, ChildID: "other"}, t0, nil)
	require.True(t, IsStale(err))

	c := run(t, def, d.State, Cancel{})
	require.Equal(t, []string{"step:" + QueueCancel}, queuesOf(c), "cancel reaches the child")

	d = run(t, def, d.State, ChildDone{Step: "child", Attempt: 1, ChildID: "c1", Status: ordotype.StatusCompleted, Output: json.RawMessage(`{"ok":true}`)})
	require.Equal(t, []string{"step.completed:child", "step.scheduled:after"}, types(d))

	// A child tells its parent when it ends.
	kid := mustParse(t, `{workflow: kid, steps: [{id: x, task: {handler: x}}]}`)
	k := run(t, kid, nil, Start{ID: "c1", ParentID: "p1", ParentStep: "child", ParentAttempt: 1})
	k = run(t, kid, k.State, done("x", 1, `{}`))
	require.Equal(t, []string{"step:" + QueueParent}, queuesOf(k))
	var pt ParentTask
	require.NoError(t, json.Unmarshal(k.Tasks[0].Payload, &pt))
	require.Equal(t, ParentTask{Parent: "p1", Step: "child", Attempt: 1}, pt)
}
