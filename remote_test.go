package ordo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordostore"
)

const paymentYAML = `
workflow: pay
retry: {maxAttempts: 3, initialInterval: 10ms, backoffFactor: 1, maxInterval: 10ms, jitter: 0}
steps:
  - id: charge
    task: {queue: payment, command: charge}
  - id: ship
    after: [charge]
    task: {queue: shipping}
`

const approvalYAML = `
workflow: approval
steps:
  - id: approve
    human:
      role: manager
      form:
        type: object
        required: [approved]
        properties:
          approved: {type: boolean}
          amount: {type: integer, minimum: 1}
`

func deployYAML(t *testing.T, eng *ordo.Engine, src string) {
	t.Helper()
	def, err := ordo.ParseDefinition([]byte(src), "w.yaml")
	require.NoError(t, err)
	_, err = eng.Deploy(t.Context(), def)
	require.NoError(t, err)
}

// pollOne polls queue for worker and requires one task.
func pollOne(t *testing.T, eng *ordo.Engine, worker string, queues ...string) *ordo.OpenTask {
	t.Helper()
	tasks, err := eng.PollTasks(t.Context(), &ordo.PollParams{Queues: queues, Worker: worker, Wait: 10 * time.Second})
	require.NoError(t, err)
	require.Len(t, tasks, 1, "a task of %v for %s", queues, worker)
	return tasks[0]
}

// eventsOf returns the journal's events of a type.
func eventsOf(t *testing.T, eng *ordo.Engine, id, typ string) []map[string]any {
	t.Helper()
	events, err := eng.Journal(t.Context(), id)
	require.NoError(t, err)
	var out []map[string]any
	for _, e := range events {
		if e.Type == typ {
			m := map[string]any{"step": e.Step, "attempt": float64(e.Attempt)}
			if len(e.Data) > 0 {
				require.NoError(t, json.Unmarshal(e.Data, &m))
				m["step"], m["attempt"] = e.Step, float64(e.Attempt)
			}
			out = append(out, m)
		}
	}
	return out
}

func TestRemote_PollAndComplete(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, &ordo.Config{PollInterval: time.Minute})
	ctx := t.Context()
	deployYAML(t, eng, paymentYAML)

	// Nothing yet: a poll without a wait answers at once, empty.
	tasks, err := eng.PollTasks(ctx, &ordo.PollParams{Queues: []string{"payment"}, Worker: "w1"})
	require.NoError(t, err)
	require.Empty(t, tasks)

	// A waiting poll is woken by the commit that makes the task (the poll
	// interval is a minute: only the wake can deliver it in time).
	got := make(chan []*ordo.OpenTask, 1)
	go func() {
		tasks, err := eng.PollTasks(ctx, &ordo.PollParams{Queues: []string{"payment", "other"}, Worker: "w1", Max: 5, Wait: 30 * time.Second})
		if err != nil {
			tasks = nil
		}
		got <- tasks
	}()
	// Once the poll has looked in the store (and found nothing) it waits.
	require.Eventually(t, func() bool { return eng.Stats().RemoteClaims >= 2 }, 10*time.Second, time.Millisecond)
	id, err := eng.Start(ctx, "pay", map[string]any{"amount": 42})
	require.NoError(t, err)
	tasks = <-got
	require.Len(t, tasks, 1)
	require.Equal(t, int64(2), eng.Stats().RemoteClaims, "no claim query for the task handed over")
	task := tasks[0]
	require.Equal(t, id, task.InstanceID)
	require.Equal(t, "pay", task.Workflow)
	require.Equal(t, "charge", task.Step)
	require.Equal(t, "payment", task.Queue)
	require.Equal(t, "charge", task.Command)
	require.Equal(t, "task", task.Kind)
	require.Equal(t, 1, task.Attempt)
	require.Equal(t, 1, task.Claim)
	require.Equal(t, "w1", task.Worker)
	require.Equal(t, id+"/charge/1", task.IdempotencyKey)
	require.JSONEq(t, `{"amount":42}`, string(task.Input))
	require.JSONEq(t, `{"amount":42}`, string(task.WorkflowInput))
	require.False(t, task.LeaseUntil.IsZero())

	inst, err := eng.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StepRunning, inst.Step("charge").Status, "the claim journals the step as started")
	started := eventsOf(t, eng, id, "step.started")
	require.Len(t, started, 1)
	require.Equal(t, "w1", started[0]["worker"])
	require.Equal(t, float64(1), started[0]["claim"])

	// Listed while leased.
	open, err := eng.ListTasks(ctx, &ordo.ListTasksParams{InstanceID: id})
	require.NoError(t, err)
	require.Len(t, open, 1)
	require.Equal(t, task.ID, open[0].ID)
	require.Equal(t, "w1", open[0].Worker)

	until, err := eng.HeartbeatTask(ctx, task.ID, task.Claim)
	require.NoError(t, err)
	require.False(t, until.Before(task.LeaseUntil))

	require.NoError(t, eng.CompleteTask(ctx, task.ID, task.Claim, &ordo.TaskCompletion{
		Output: map[string]any{"charged": true}, State: map[string]any{"paid": 42},
	}))
	// A second completion of the same delivery is refused.
	err = eng.CompleteTask(ctx, task.ID, task.Claim, &ordo.TaskCompletion{Output: map[string]any{"charged": false}})
	require.ErrorIs(t, err, ordo.ErrLeaseLost)

	ship := pollOne(t, eng, "w2", "shipping")
	require.JSONEq(t, `{"charged":true}`, string(ship.Input), "the output of a step is the input of the next")
	require.JSONEq(t, `{"paid":42}`, string(ship.State))
	require.NoError(t, eng.CompleteTask(ctx, ship.ID, ship.Claim, &ordo.TaskCompletion{Output: json.RawMessage(`{"tracking":"T1"}`)}))

	inst, err = eng.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.JSONEq(t, `{"tracking":"T1"}`, string(inst.Output))
	require.Len(t, eventsOf(t, eng, id, "step.completed"), 2)
	st := eng.Stats()
	require.Equal(t, int64(2), st.PolledTasks)
	require.Equal(t, int64(1), st.HandedOff, "the task made while a poll waited was leased to it at insert")
}

func TestRemote_FailAndRetry(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, &ordo.Config{PollInterval: 20 * time.Millisecond})
	ctx := t.Context()
	deployYAML(t, eng, paymentYAML)

	id, err := eng.Start(ctx, "pay", map[string]any{"amount": 1})
	require.NoError(t, err)
	first := pollOne(t, eng, "w1", "payment")
	require.NoError(t, eng.FailTask(ctx, first.ID, first.Claim, &ordo.TaskFailure{Message: "gateway timeout", Code: "timeout", Retryable: true}))

	second := pollOne(t, eng, "w1", "payment")
	require.Equal(t, 2, second.Attempt, "a retry is a new attempt")
	require.NotEqual(t, first.ID, second.ID)
	require.Equal(t, id+"/charge/2", second.IdempotencyKey)
	require.NoError(t, eng.FailTask(ctx, second.ID, second.Claim, &ordo.TaskFailure{Message: "card declined", Code: "card_declined"}))

	inst, err := eng.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusFailed, inst.Status, "a failure that is not retryable fails the step at once")
	require.Equal(t, "card_declined", inst.Error.Code)
	failed := eventsOf(t, eng, id, "step.failed")
	require.Len(t, failed, 2)
	require.Equal(t, "timeout", failed[0]["error"].(map[string]any)["code"])

	// A failure needs a message.
	id2, err := eng.Start(ctx, "pay", map[string]any{"amount": 2})
	require.NoError(t, err)
	task := pollOne(t, eng, "w1", "payment")
	require.Equal(t, id2, task.InstanceID)
	require.ErrorIs(t, eng.FailTask(ctx, task.ID, task.Claim, &ordo.TaskFailure{}), ordo.ErrInvalid)
}

func TestRemote_LeaseExpiryRedeliversAndRefusesTheLateResult(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, &ordo.Config{TaskLease: 300 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	ctx := t.Context()
	deployYAML(t, eng, paymentYAML)
	id, err := eng.Start(ctx, "pay", nil)
	require.NoError(t, err)

	slow := pollOne(t, eng, "slow", "payment")
	require.Equal(t, 1, slow.Claim)
	// The slow worker sends no heartbeat: the lease runs out and the task
	// goes to another worker, same attempt, same idempotency key.
	fast := pollOne(t, eng, "fast", "payment")
	require.Equal(t, slow.ID, fast.ID)
	require.Equal(t, 2, fast.Claim)
	require.Equal(t, slow.Attempt, fast.Attempt)
	require.Equal(t, slow.IdempotencyKey, fast.IdempotencyKey)

	_, err = eng.HeartbeatTask(ctx, slow.ID, slow.Claim)
	require.ErrorIs(t, err, ordo.ErrLeaseLost)
	err = eng.CompleteTask(ctx, slow.ID, slow.Claim, &ordo.TaskCompletion{Output: map[string]any{"by": "slow"}})
	require.ErrorIs(t, err, ordo.ErrLeaseLost)
	require.NoError(t, eng.CompleteTask(ctx, fast.ID, fast.Claim, &ordo.TaskCompletion{Output: map[string]any{"by": "fast"}}))
	// The slow worker tries again: the task is done.
	err = eng.CompleteTask(ctx, slow.ID, slow.Claim, &ordo.TaskCompletion{Output: map[string]any{"by": "slow"}})
	require.ErrorIs(t, err, ordo.ErrLeaseLost)

	inst, err := eng.Get(ctx, id)
	require.NoError(t, err)
	require.JSONEq(t, `{"by":"fast"}`, string(inst.Step("charge").Output), "the result of the current claim is kept")

	completed := eventsOf(t, eng, id, "step.completed")
	require.Len(t, completed, 1, "the step is completed once")
	started := eventsOf(t, eng, id, "step.started")
	require.Len(t, started, 2)
	require.Equal(t, []any{"slow", "fast"}, []any{started[0]["worker"], started[1]["worker"]})
	rejected := eventsOf(t, eng, id, "step.rejected")
	require.Len(t, rejected, 2, "the heartbeat and the completion with the old claim")
	for _, r := range rejected {
		require.Equal(t, "charge", r["step"])
		require.Equal(t, "slow", r["worker"])
		require.Equal(t, float64(1), r["claim"])
		require.Contains(t, r["reason"], "claimed again")
	}
	st := eng.Stats()
	require.GreaterOrEqual(t, st.Redelivered, int64(1))
	require.GreaterOrEqual(t, st.Rejected, int64(3))
}

func TestRemote_HumanTask(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, nil)
	ctx := t.Context()
	deployYAML(t, eng, approvalYAML)
	id, err := eng.Start(ctx, "approval", map[string]any{"order": "o-1"})
	require.NoError(t, err)
	inst, err := eng.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusWaiting, inst.Status)

	tasks, err := eng.ListTasks(ctx, &ordo.ListTasksParams{Kind: "human"})
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	task := tasks[0]
	require.Equal(t, "human", task.Kind)
	require.Equal(t, "manager", task.Role)
	require.Equal(t, "ordo.human", task.Queue)
	require.Contains(t, string(task.Form), `"required":["approved"]`)
	require.True(t, task.LeaseUntil.IsZero())
	none, err := eng.ListTasks(ctx, &ordo.ListTasksParams{Kind: "task"})
	require.NoError(t, err)
	require.Empty(t, none)
	got, err := eng.GetTask(ctx, task.ID)
	require.NoError(t, err)
	require.Equal(t, task.ID, got.ID)

	// Human tasks are not polled.
	_, err = eng.PollTasks(ctx, &ordo.PollParams{Queues: []string{"ordo.human"}, Worker: "w"})
	require.ErrorIs(t, err, ordo.ErrInvalid)
	_, err = eng.HeartbeatTask(ctx, task.ID, 0)
	require.ErrorIs(t, err, ordo.ErrInvalid)

	before, err := eng.Journal(ctx, id)
	require.NoError(t, err)
	for _, bad := range []struct {
		output  string
		pointer string
	}{
		{`{"approved":"yes"}`, "/approved"},
		{`{"approved":true,"amount":0}`, "/amount"},
		{`{"amount":3}`, ""},
		{`[]`, ""},
	} {
		err := eng.CompleteTask(ctx, task.ID, 0, &ordo.TaskCompletion{Output: json.RawMessage(bad.output)})
		require.ErrorIs(t, err, ordo.ErrInvalid, bad.output)
		var fe *ordo.FormError
		require.True(t, errors.As(err, &fe), bad.output)
		require.Equal(t, bad.pointer, fe.Pointer, bad.output)
	}
	after, err := eng.Journal(ctx, id)
	require.NoError(t, err)
	require.Equal(t, len(before), len(after), "a refused output stores nothing")

	require.NoError(t, eng.CompleteTask(ctx, task.ID, 0, &ordo.TaskCompletion{Output: json.RawMessage(`{"approved":true,"amount":5}`)}))
	inst, err = eng.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.JSONEq(t, `{"approved":true,"amount":5}`, string(inst.Output))
	require.ErrorIs(t, eng.CompleteTask(ctx, task.ID, 0, &ordo.TaskCompletion{Output: json.RawMessage(`{"approved":false}`)}), ordo.ErrLeaseLost)
	_, err = eng.GetTask(ctx, task.ID)
	require.ErrorIs(t, err, ordo.ErrNotFound)
}

func TestRemote_CancelledInstanceStopsTheWorker(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, nil)
	ctx := t.Context()
	deployYAML(t, eng, paymentYAML)
	id, err := eng.Start(ctx, "pay", nil)
	require.NoError(t, err)
	task := pollOne(t, eng, "w1", "payment")
	require.NoError(t, eng.Cancel(ctx, id, "customer left"))

	_, err = eng.HeartbeatTask(ctx, task.ID, task.Claim)
	require.ErrorIs(t, err, ordo.ErrLeaseLost, "the heartbeat tells the worker to stop")
	require.ErrorIs(t, eng.CompleteTask(ctx, task.ID, task.Claim, nil), ordo.ErrLeaseLost)
	open, err := eng.ListTasks(ctx, nil)
	require.NoError(t, err)
	require.Empty(t, open)
	require.Empty(t, eventsOf(t, eng, id, "step.completed"))
}

func TestRemote_BadInput(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, nil)
	ctx := t.Context()
	deployYAML(t, eng, paymentYAML)
	for _, p := range []*ordo.PollParams{
		{Worker: "w"},
		{Queues: []string{""}, Worker: "w"},
		{Queues: []string{"ordo.timer"}, Worker: "w"},
		{Queues: []string{"payment"}},
	} {
		_, err := eng.PollTasks(ctx, p)
		require.ErrorIs(t, err, ordo.ErrInvalid, "%+v", p)
	}
	_, err := eng.Start(ctx, "pay", nil)
	require.NoError(t, err)
	task := pollOne(t, eng, "w1", "payment")

	require.ErrorIs(t, eng.CompleteTask(ctx, task.ID, 0, nil), ordo.ErrInvalid, "a remote task needs its claim")
	require.ErrorIs(t, eng.CompleteTask(ctx, task.ID, task.Claim, &ordo.TaskCompletion{Output: json.RawMessage(`{`)}), ordo.ErrInvalid)
	require.ErrorIs(t, eng.CompleteTask(ctx, task.ID, task.Claim, &ordo.TaskCompletion{SideEffects: []ordo.SideEffect{{Type: "nope"}}}), ordo.ErrInvalid)
	require.ErrorIs(t, eng.CompleteTask(ctx, 999999, 1, nil), ordo.ErrNotFound)
	_, err = eng.GetTask(ctx, 999999)
	require.ErrorIs(t, err, ordo.ErrNotFound)
	require.Empty(t, eventsOf(t, eng, task.InstanceID, "step.completed"), "nothing was stored")
	require.Empty(t, eventsOf(t, eng, task.InstanceID, "step.rejected"))

	// Still open with its claim: the right completion goes through.
	require.NoError(t, eng.CompleteTask(ctx, task.ID, task.Claim, &ordo.TaskCompletion{Output: map[string]any{}}))
}

// TestRemote_ManyWorkers runs instances through several workers polling at
// once, and one that keeps giving up its polls (its client goes away): the
// tasks handed to it are delivered again when their lease runs out, and
// every step completes exactly once.
func TestRemote_ManyWorkers(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, &ordo.Config{TaskLease: 500 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	// A task lost for good would leave its instance waiting: the test
	// fails at this deadline rather than hangs.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	deployYAML(t, eng, paymentYAML)

	const instances = 30
	defer func() { t.Logf("stats: %+v", eng.Stats()) }()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				tasks, err := eng.PollTasks(ctx, &ordo.PollParams{Queues: []string{"payment", "shipping"}, Worker: fmt.Sprint("w", w), Max: 3, Wait: time.Second})
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("worker %d: %v", w, err)
					}
					return
				}
				for _, task := range tasks {
					_ = eng.CompleteTask(ctx, task.ID, task.Claim, &ordo.TaskCompletion{Output: map[string]any{"by": task.Worker}})
				}
			}
		})
	}
	wg.Go(func() {
		// A bounded while: a quitter that never stops could take every
		// task from a worker made slow by a loaded machine, forever.
		for range 200 {
			if ctx.Err() != nil {
				return
			}
			pctx, pcancel := context.WithTimeout(ctx, 3*time.Millisecond)
			_, _ = eng.PollTasks(pctx, &ordo.PollParams{Queues: []string{"payment", "shipping"}, Worker: "quitter", Max: 2, Wait: time.Second})
			pcancel()
		}
	})

	ids := make([]string, instances)
	for i := range ids {
		id, err := eng.Start(ctx, "pay", map[string]any{"n": i})
		require.NoError(t, err)
		ids[i] = id
	}
	for _, id := range ids {
		inst, err := eng.Wait(ctx, id)
		require.NoError(t, err)
		require.Equal(t, ordo.StatusCompleted, inst.Status)
		require.Len(t, eventsOf(t, eng, id, "step.completed"), 2, "each step completes once")
	}
	cancel()
	wg.Wait()
	open, err := eng.ListTasks(t.Context(), nil)
	require.NoError(t, err)
	require.Empty(t, open)
}

func TestRemote_StepHeartbeatIsTheLease(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, &ordo.Config{TaskLease: time.Hour, PollInterval: 20 * time.Millisecond})
	ctx := t.Context()
	deployYAML(t, eng, `
workflow: render
steps:
  - {id: frame, task: {queue: render}, heartbeat: 300ms}
`)
	_, err := eng.Start(ctx, "render", nil)
	require.NoError(t, err)
	first := pollOne(t, eng, "w1", "render")
	require.WithinDuration(t, time.Now().Add(300*time.Millisecond), first.LeaseUntil, 250*time.Millisecond,
		"the step's heartbeat timeout, not the hour-long task lease")
	// A heartbeat keeps it; silence past the timeout hands it on.
	until, err := eng.HeartbeatTask(ctx, first.ID, first.Claim)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(300*time.Millisecond), until, 250*time.Millisecond)
	second := pollOne(t, eng, "w2", "render")
	require.Equal(t, first.ID, second.ID)
	require.Equal(t, 2, second.Claim)
}

func TestRemote_TaskCarriesTheTraceContext(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, nil)
	deployYAML(t, eng, paymentYAML)
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))
	_, err := eng.Start(ctx, "pay", nil)
	require.NoError(t, err)
	task := pollOne(t, eng, "w1", "payment")
	require.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", task.TraceParent,
		"a worker gets the trace context the instance was started under")
}

// A step's timeout fails a delivery whose worker went silent even when no
// worker polls its queue again: the engine acts at the deadline, and the
// worker's task is done with it. The same for a step the worker took with
// its completion of the step before.
func TestRemote_TimeoutWithoutAnotherPoll(t *testing.T) {
	t.Parallel()
	for _, takenNext := range []bool{false, true} {
		t.Run(fmt.Sprintf("takenNext=%v", takenNext), func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			eng, _ := openEngine(t, &ordo.Config{PollInterval: 20 * time.Millisecond})
			deployYAML(t, eng, `workflow: watched
onFailure: review
steps:
  - id: reserve
    task: {queue: before}
  - id: charge
    after: [reserve]
    task: {queue: watched}
    timeout: 300ms
    retry: {maxAttempts: 1}
`)
			id, err := eng.Start(ctx, "watched", nil)
			require.NoError(t, err)
			reserve := pollOne(t, eng, "w1", "before")
			var charge *ordo.OpenTask
			if takenNext {
				done, err := eng.CompleteTaskNext(ctx, reserve.ID, reserve.Claim, nil, &ordo.PollParams{Queues: []string{"watched"}, Worker: "w1"})
				require.NoError(t, err)
				require.Len(t, done.Next, 1)
				charge = done.Next[0]
			} else {
				require.NoError(t, eng.CompleteTask(ctx, reserve.ID, reserve.Claim, &ordo.TaskCompletion{}))
				charge = pollOne(t, eng, "w1", "watched")
			}
			require.Equal(t, "charge", charge.Step)
			require.False(t, charge.Deadline.IsZero())

			// w1 goes silent; nobody polls "watched" again.
			waitCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			inst, err := eng.Wait(waitCtx, id)
			require.NoError(t, err)
			require.Equal(t, ordo.StatusReview, inst.Status)
			failed := eventsOf(t, eng, id, "step.failed")
			require.Len(t, failed, 1)
			require.Equal(t, "timeout", failed[0]["error"].(map[string]any)["code"])
			require.Contains(t, failed[0]["error"].(map[string]any)["message"], "timeout of 300ms")
			require.False(t, time.Now().Before(charge.Deadline), "not before the deadline")

			tasks, err := eng.ListTasks(ctx, &ordo.ListTasksParams{Queue: "watched"})
			require.NoError(t, err)
			require.Empty(t, tasks, "the worker's task is done")
			err = eng.CompleteTask(ctx, charge.ID, charge.Claim, &ordo.TaskCompletion{Output: "late", InstanceID: id})
			require.ErrorIs(t, err, ordo.ErrLeaseLost)
		})
	}
}

// A delivery that ends in time takes its timeout task with it: nothing is
// left to fire at the deadline.
func TestRemote_TimeoutTaskGoesWithTheDelivery(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	eng, _ := openEngine(t, &ordo.Config{PollInterval: 20 * time.Millisecond})
	deployYAML(t, eng, `workflow: watched
steps:
  - id: charge
    task: {queue: watched}
    timeout: 1h
  - id: ship
    after: [charge]
    task: {queue: watched}
    timeout: 1h
`)
	id, err := eng.Start(ctx, "watched", nil)
	require.NoError(t, err)
	timeouts := func() int {
		t.Helper()
		tasks, err := eng.Store().ListTasks(ctx, &ordostore.ListTasksParams{InstanceID: id, Queues: []string{"ordo.timeout"}})
		require.NoError(t, err)
		return len(tasks)
	}
	first := pollOne(t, eng, "w1", "watched")
	require.Equal(t, 1, timeouts(), "taking the step made its timeout task")
	done, err := eng.CompleteTaskNext(ctx, first.ID, first.Claim, nil, &ordo.PollParams{Queues: []string{"watched"}, Worker: "w1"})
	require.NoError(t, err)
	require.Len(t, done.Next, 1)
	require.Equal(t, 1, timeouts(), "charge's went with its completion; ship's came with its start")
	require.NoError(t, eng.FailTask(ctx, done.Next[0].ID, done.Next[0].Claim, &ordo.TaskFailure{Message: "no", Retryable: false}))
	require.Zero(t, timeouts(), "a failure takes it too")
}

// TestRemote_TimeoutSurvivesARestart checks that a remote task's deadline
// is durable: the engine that handed the task out stops, and the one
// opened on the same file after the deadline times the attempt out instead
// of handing it out again, and refuses the late result.
func TestRemote_TimeoutSurvivesARestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ordo.db")
	cfg := &ordo.Config{PollInterval: 20 * time.Millisecond} // a 30s task lease: the timeout is shorter
	eng, err := ordo.Open(ctx, ordo.SQLite(path), cfg)
	require.NoError(t, err)
	deployYAML(t, eng, `workflow: timed
steps:
  - id: charge
    task: {queue: timed}
    timeout: 300ms
    retry: {maxAttempts: 2, initialInterval: 1ms, jitter: 0}
`)
	id, err := eng.Start(ctx, "timed", nil)
	require.NoError(t, err)
	first := pollOne(t, eng, "w1", "timed")
	require.False(t, first.Deadline.IsZero())
	require.False(t, first.LeaseUntil.After(first.Deadline))
	require.NoError(t, eng.Close(ctx))

	time.Sleep(time.Until(first.Deadline) + 50*time.Millisecond)
	eng, err = ordo.Open(ctx, ordo.SQLite(path), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, eng.Close(context.Background())) })

	var retry *ordo.OpenTask
	for retry == nil {
		tasks, err := eng.PollTasks(ctx, &ordo.PollParams{Queues: []string{"timed"}, Worker: "w2", Wait: 5 * time.Second})
		require.NoError(t, err)
		for _, tk := range tasks {
			require.NotEqual(t, first.ID, tk.ID, "the timed-out delivery is not handed out again")
			retry = tk
		}
	}
	require.Equal(t, 2, retry.Attempt)
	failed := eventsOf(t, eng, id, "step.failed")
	require.Len(t, failed, 1)
	require.Equal(t, "timeout", failed[0]["error"].(map[string]any)["code"])
	require.Contains(t, failed[0]["error"].(map[string]any)["message"], "timeout of 300ms")

	err = eng.CompleteTask(ctx, first.ID, first.Claim, &ordo.TaskCompletion{Output: "late", InstanceID: id})
	require.ErrorIs(t, err, ordo.ErrLeaseLost)
	require.Len(t, eventsOf(t, eng, id, "step.rejected"), 1, "the late result is journaled")
	require.NoError(t, eng.CompleteTask(ctx, retry.ID, retry.Claim, &ordo.TaskCompletion{Output: "on time", InstanceID: id}))
	inst, err := eng.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.JSONEq(t, `"on time"`, string(inst.Output))
}
