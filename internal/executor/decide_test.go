package executor

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/ordotype"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

const orderYAML = `
workflow: order
retry: {maxAttempts: 3, initialInterval: 1s, backoffFactor: 2, maxInterval: 1m, jitter: 0}
steps:
  - id: pay
    task: {handler: pay}
  - id: reserve
    after: [pay]
    task: {handler: reserve}
  - id: label
    after: [pay]
    task: {handler: label}
  - id: gift
    after: [pay]
    when: input.vip == true
    task: {handler: gift}
  - id: ship
    after: [reserve, label, gift]
    task: {handler: ship}
`

func mustParse(t *testing.T, src string) *definition.Workflow {
	t.Helper()
	def, err := definition.Parse([]byte(src), "test.yaml")
	require.NoError(t, err)
	return def
}

// run decides cmd and checks that folding the emitted events onto the
// input state gives the returned state (the decision and the fold agree).
func run(t *testing.T, def *definition.Workflow, st *journal.State, cmd Command) *Decision {
	t.Helper()
	d, err := Decide(context.Background(), def, st, cmd, t0, func() float64 { return 0.5 })
	require.NoError(t, err)
	folded := &journal.State{}
	if st != nil {
		folded = st.Clone()
	} else {
		folded.ID = d.State.ID
	}
	for _, e := range d.Events {
		require.NoError(t, journal.Apply(folded, e))
	}
	require.Equal(t, d.State, folded)
	return d
}

func types(d *Decision) []string {
	var out []string
	for _, e := range d.Events {
		s := string(e.Type)
		if e.Step != "" {
			s += ":" + e.Step
		}
		out = append(out, s)
	}
	return out
}

func done(step string, attempt int, out string) StepDone {
	return StepDone{Step: step, Attempt: attempt, StartedAt: t0, Output: json.RawMessage(out)}
}

func TestDecide_OrderHappyPath(t *testing.T) {
	t.Parallel()
	def := mustParse(t, orderYAML)

	d := run(t, def, nil, Start{ID: "i1", Input: json.RawMessage(`{"vip":false}`), Version: 1})
	require.Equal(t, []string{"workflow.started", "step.scheduled:pay"}, types(d))
	require.Len(t, d.Tasks, 1)
	require.Equal(t, NewTask{Kind: ordotype.TaskStep, Queue: "pay", Step: "pay", Attempt: 1, DueAt: t0}, d.Tasks[0])
	require.Equal(t, ordotype.StatusRunning, d.State.Status)

	d = run(t, def, d.State, done("pay", 1, `{"paid":true}`))
	require.Equal(t, []string{
		"step.completed:pay",
		"step.scheduled:reserve", "step.scheduled:label", "step.skipped:gift",
	}, types(d))
	require.Len(t, d.Tasks, 2, "reserve and label run in parallel")
	require.JSONEq(t, `{"paid":true}`, string(d.State.Steps["reserve"].Input), "output of a step is the input of the next")
	require.JSONEq(t, `{"paid":true}`, string(d.State.Steps["gift"].Input), "a skipped step passes its input on")

	d = run(t, def, d.State, done("reserve", 1, `{"r":1}`))
	require.Equal(t, []string{"step.completed:reserve"}, types(d), "the join waits for label")
	require.Empty(t, d.Tasks)

	d = run(t, def, d.State, done("label", 1, `{"l":2}`))
	require.Equal(t, []string{"step.completed:label", "step.scheduled:ship"}, types(d))
	require.JSONEq(t, `{"reserve":{"r":1},"label":{"l":2},"gift":{"paid":true}}`, string(d.State.Steps["ship"].Input), "a join gets every parent's output")

	d = run(t, def, d.State, done("ship", 1, `{"tracking":"T1"}`))
	require.Equal(t, []string{"step.completed:ship", "workflow.completed"}, types(d))
	require.Equal(t, ordotype.StatusCompleted, d.State.Status)
	require.JSONEq(t, `{"tracking":"T1"}`, string(d.State.Output))
	require.Equal(t, t0, d.State.FinishedAt)
}

func TestDecide_VIPBranchRuns(t *testing.T) {
	t.Parallel()
	def := mustParse(t, orderYAML)
	d := run(t, def, nil, Start{ID: "i1", Input: json.RawMessage(`{"vip":true}`)})
	d = run(t, def, d.State, done("pay", 1, `{}`))
	require.Equal(t, ordotype.StepScheduled, d.State.Steps["gift"].Status)
	require.Len(t, d.Tasks, 3)
}

func TestDecide_RetryThenFail(t *testing.T) {
	t.Parallel()
	def := mustParse(t, orderYAML)
	d := run(t, def, nil, Start{ID: "i1", Input: json.RawMessage(`{}`)})
	boom := &journal.Error{Message: "boom", Retryable: true}

	d = run(t, def, d.State, StepDone{Step: "pay", Attempt: 1, Err: boom})
	require.Equal(t, []string{"step.failed:pay", "step.retrying:pay"}, types(d))
	require.Equal(t, t0.Add(time.Second), d.Tasks[0].DueAt, "first retry after initialInterval")
	require.Equal(t, 2, d.Tasks[0].Attempt)

	d = run(t, def, d.State, StepDone{Step: "pay", Attempt: 2, Err: &journal.Error{Message: "boom", Retryable: true}})
	require.Equal(t, t0.Add(2*time.Second), d.Tasks[0].DueAt, "backoff doubles")

	d = run(t, def, d.State, StepDone{Step: "pay", Attempt: 3, Err: &journal.Error{Message: "boom", Retryable: true}})
	require.Equal(t, []string{"step.failed:pay", "workflow.failed"}, types(d), "three attempts, then fail")
	require.Equal(t, ordotype.StatusFailed, d.State.Status)
	require.Equal(t, "pay", d.State.Error.Step)
	require.Empty(t, d.Tasks)
}

func TestDecide_NonRetryableParksForReview(t *testing.T) {
	t.Parallel()
	def := mustParse(t, "workflow: w\nonFailure: review\nsteps:\n  - id: a\n    task: {handler: a}\n  - id: b\n    after: [a]\n    task: {handler: b}\n")
	d := run(t, def, nil, Start{ID: "i1"})
	d = run(t, def, d.State, StepDone{Step: "a", Attempt: 1, Err: &journal.Error{Message: "card declined"}})
	require.Equal(t, []string{"step.failed:a", "workflow.parked"}, types(d))
	require.Equal(t, ordotype.StatusReview, d.State.Status)

	// A resubmit runs the failed step again, with a new attempt number and a
	// fresh retry budget.
	d = run(t, def, d.State, Resubmit{Reason: "card updated"})
	require.Equal(t, []string{"workflow.resubmitted", "step.scheduled:a"}, types(d))
	require.Equal(t, 2, d.Tasks[0].Attempt)
	require.Equal(t, ordotype.StatusRunning, d.State.Status)
	d = run(t, def, d.State, done("a", 2, `1`))
	d = run(t, def, d.State, done("b", 1, `2`))
	require.Equal(t, ordotype.StatusCompleted, d.State.Status)
}

func TestDecide_ResubmitRejected(t *testing.T) {
	t.Parallel()
	def := mustParse(t, orderYAML)
	d := run(t, def, nil, Start{ID: "i1"})
	_, err := Decide(context.Background(), def, d.State, Resubmit{}, t0, nil)
	require.ErrorIs(t, err, ordotype.ErrInvalid, "a running instance cannot be resubmitted")
}

func TestDecide_StaleResults(t *testing.T) {
	t.Parallel()
	def := mustParse(t, orderYAML)
	d := run(t, def, nil, Start{ID: "i1"})
	st := run(t, def, d.State, done("pay", 1, `{}`)).State

	_, err := Decide(context.Background(), def, st, done("pay", 1, `{}`), t0, nil)
	require.ErrorIs(t, err, ErrStale, "a second completion of the same attempt is dropped")
	_, err = Decide(context.Background(), def, st, done("reserve", 7, `{}`), t0, nil)
	require.ErrorIs(t, err, ErrStale, "an attempt that was never scheduled is dropped")
	require.True(t, errors.Is(err, ordotype.ErrDuplicate))
}

func TestDecide_ErrorPath(t *testing.T) {
	t.Parallel()
	def := mustParse(t, `
workflow: pay
steps:
  - id: charge
    task: {handler: charge}
    retry: {maxAttempts: 1}
    onError: notify
  - id: done
    after: [charge]
    task: {handler: done}
  - id: notify
    task: {handler: notify}
`)
	d := run(t, def, nil, Start{ID: "i1", Input: json.RawMessage(`{"order":1}`)})
	require.Equal(t, []string{"workflow.started", "step.scheduled:charge"}, types(d), "an error-path step does not start on its own")
	d = run(t, def, d.State, StepDone{Step: "charge", Attempt: 1, Err: &journal.Error{Message: "declined", Code: "card", Retryable: true}})
	require.Equal(t, []string{"step.failed:charge", "step.scheduled:notify"}, types(d))
	var in struct {
		Error journal.Error   `json:"error"`
		Input json.RawMessage `json:"input"`
	}
	require.NoError(t, json.Unmarshal(d.State.Steps["notify"].Input, &in))
	require.Equal(t, "declined", in.Error.Message)
	require.Equal(t, "card", in.Error.Code)
	d = run(t, def, d.State, done("notify", 1, `{}`))
	require.Equal(t, ordotype.StatusCompleted, d.State.Status)
	require.Equal(t, ordotype.StepPending, d.State.Step("done").Status, "the failed step's dependants never run")
}

func TestDecide_Effects(t *testing.T) {
	t.Parallel()
	def := mustParse(t, "workflow: w\nretry: {maxAttempts: 2, jitter: 0}\nsteps:\n  - id: a\n    task: {handler: a}\n    waitEffects: true\n  - id: b\n    after: [a]\n    task: {handler: b}\n")
	d := run(t, def, nil, Start{ID: "i1"})
	sd := done("a", 1, `{}`)
	sd.Effects = []Effect{{Type: "http", Payload: json.RawMessage(`{"url":"http://x"}`)}, {Type: "log"}}
	d = run(t, def, d.State, sd)
	require.Equal(t, []string{"step.completed:a", "effect.scheduled:a", "effect.scheduled:a"}, types(d))
	require.Len(t, d.Tasks, 2)
	require.Equal(t, ordotype.TaskEffect, d.Tasks[0].Kind)
	var et EffectTask
	require.NoError(t, json.Unmarshal(d.Tasks[0].Payload, &et))
	require.Equal(t, "i1/a/1/0", et.Key)
	require.Equal(t, 2, d.State.PendingEffects)

	d = run(t, def, d.State, EffectDone{Step: "a", Index: 1, Type: "log", Key: "i1/a/1/1", Attempt: 1})
	require.Empty(t, d.Tasks, "b waits for a's effects")
	d = run(t, def, d.State, EffectDone{Step: "a", Index: 0, Type: "http", Key: "i1/a/1/0", Attempt: 1, Payload: json.RawMessage(`{}`), Err: &journal.Error{Message: "503", Retryable: true}})
	require.Equal(t, []string{"effect.failed:a"}, types(d))
	require.Len(t, d.Tasks, 1, "the effect is tried again")
	require.Equal(t, 2, d.Tasks[0].Attempt)
	require.Equal(t, t0.Add(time.Second), d.Tasks[0].DueAt)
	d = run(t, def, d.State, EffectDone{Step: "a", Index: 0, Type: "http", Key: "i1/a/1/0", Attempt: 2})
	require.Equal(t, []string{"effect.completed:a", "step.scheduled:b"}, types(d))
	d = run(t, def, d.State, done("b", 1, `{}`))
	require.Equal(t, ordotype.StatusCompleted, d.State.Status)
}

func TestDecide_EffectFailureFailsWaitingStep(t *testing.T) {
	t.Parallel()
	def := mustParse(t, "workflow: w\nsteps:\n  - id: a\n    task: {handler: a}\n    waitEffects: true\n")
	d := run(t, def, nil, Start{ID: "i1"})
	sd := done("a", 1, `{}`)
	sd.Effects = []Effect{{Type: "http"}}
	d = run(t, def, d.State, sd)
	d = run(t, def, d.State, EffectDone{Step: "a", Index: 0, Type: "http", Attempt: 1, Err: &journal.Error{Message: "400"}})
	require.Equal(t, []string{"effect.failed:a", "workflow.failed"}, types(d))
}

func TestDecide_Cancel(t *testing.T) {
	t.Parallel()
	def := mustParse(t, orderYAML)
	d := run(t, def, nil, Start{ID: "i1"})
	d = run(t, def, d.State, Cancel{Reason: "customer asked"})
	require.Equal(t, ordotype.StatusCancelled, d.State.Status)
	_, err := Decide(context.Background(), def, d.State, done("pay", 1, `{}`), t0, nil)
	require.ErrorIs(t, err, ErrStale, "results arriving after a cancel are dropped")
	_, err = Decide(context.Background(), def, d.State, Cancel{}, t0, nil)
	require.ErrorIs(t, err, ordotype.ErrInvalid)
}

func TestDecide_TimerStepIsDue(t *testing.T) {
	t.Parallel()
	def := mustParse(t, "workflow: w\nsteps:\n  - id: wait\n    timer: {duration: 168h}\n")
	d := run(t, def, nil, Start{ID: "i1"})
	require.Equal(t, QueueTimer, d.Tasks[0].Queue)
	require.Equal(t, t0.Add(168*time.Hour), d.Tasks[0].DueAt)
	require.Equal(t, ordotype.StepWaiting, d.State.Steps["wait"].Status)
	require.Equal(t, ordotype.StatusWaiting, d.State.Status, "an instance whose only step waits is waiting")

	d = run(t, def, d.State, done("wait", 1, `null`))
	require.Equal(t, ordotype.StatusCompleted, d.State.Status)
}

func TestDecide_WaitingAndRunningBranches(t *testing.T) {
	t.Parallel()
	def := mustParse(t, "workflow: w\nsteps:\n  - id: wait\n    timer: {duration: 1h}\n  - id: work\n    task: {handler: a}\n")
	d := run(t, def, nil, Start{ID: "i1"})
	require.Equal(t, ordotype.StatusRunning, d.State.Status, "running while any step runs")
	d = run(t, def, d.State, done("work", 1, `1`))
	require.Equal(t, ordotype.StatusWaiting, d.State.Status, "waiting once only the timer is left")
}

func TestDecide_WhenSeesWholeNumbersAsInts(t *testing.T) {
	t.Parallel()
	def := mustParse(t, "workflow: w\nsteps:\n  - id: even\n    when: input.n % 2 == 0 && input.price > 1.5\n    task: {handler: a}\n")
	d := run(t, def, nil, Start{ID: "i1", Input: json.RawMessage(`{"n":4,"price":2.5}`)})
	require.Equal(t, ordotype.StepScheduled, d.State.Steps["even"].Status)
	d = run(t, def, nil, Start{ID: "i2", Input: json.RawMessage(`{"n":3,"price":2.5}`)})
	require.Equal(t, ordotype.StepSkipped, d.State.Steps["even"].Status)
}

func parseBench(src string) (*definition.Workflow, error) {
	return definition.Parse([]byte(src), "bench.yaml")
}
