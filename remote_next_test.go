package ordo_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/internal/testhook"
	"github.com/ordoflow/ordo/ordotest"
)

const chainYAML = `
workflow: chain
steps:
  - id: pay
    task: {queue: payment}
  - id: pick
    after: [pay]
    task: {queue: stock}
  - id: pack
    after: [pay]
    task: {queue: stock}
  - id: ship
    after: [pick, pack]
    task: {queue: shipping}
`

// A completion that asks for the next task gets the step it makes ready,
// leased to the worker and journaled as started in the completion's own
// transition; the worker completes it like a polled one.
func TestRemote_CompleteTaskNextTakesTheNextStep(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, &ordo.Config{PollInterval: 20 * time.Millisecond})
	ctx := t.Context()
	deployYAML(t, eng, chainYAML)
	id, err := eng.Start(ctx, "chain", map[string]any{"order": 7})
	require.NoError(t, err)
	all := []string{"payment", "stock", "shipping"}

	pay := pollOne(t, eng, "w1", all...)
	done, err := eng.CompleteTaskNext(ctx, pay.ID, pay.Claim, &ordo.TaskCompletion{Output: map[string]any{"paid": true}},
		&ordo.PollParams{Queues: all, Worker: "w1", Max: 1})
	require.NoError(t, err)
	require.Equal(t, id, done.InstanceID)
	require.Len(t, done.Next, 1, "max 1: one of the two steps made ready")
	first := done.Next[0]
	require.Contains(t, []string{"pick", "pack"}, first.Step)
	require.Equal(t, id, first.InstanceID)
	require.Equal(t, "stock", first.Queue)
	require.Equal(t, 1, first.Claim)
	require.Equal(t, 1, first.Attempt)
	require.Equal(t, "w1", first.Worker)
	require.Equal(t, id+"/"+first.Step+"/1", first.IdempotencyKey)
	require.JSONEq(t, `{"paid":true}`, string(first.Input))
	require.False(t, first.LeaseUntil.IsZero())

	// Journaled as started by w1 right after pay's completion scheduled
	// the two steps, in the same transition.
	events, err := eng.Journal(ctx, id)
	require.NoError(t, err)
	var types []string
	for _, ev := range events {
		types = append(types, ev.Type+":"+ev.Step)
	}
	at := slices.Index(types, "step.completed:pay")
	require.GreaterOrEqual(t, at, 0, "%v", types)
	require.Equal(t, []string{"step.scheduled:pick", "step.scheduled:pack", "step.started:" + first.Step}, types[at+1:at+4], "%v", types)
	started := eventsOf(t, eng, id, "step.started")
	require.Equal(t, "w1", started[len(started)-1]["worker"])
	require.Equal(t, float64(1), started[len(started)-1]["claim"])

	// The other step is still there for a poll; the one taken is not.
	other := pollOne(t, eng, "w2", all...)
	require.NotEqual(t, first.Step, other.Step)
	require.NotEqual(t, first.ID, other.ID)

	// The last of the join takes ship; the worker that takes none gets none.
	done, err = eng.CompleteTaskNext(ctx, first.ID, first.Claim, nil, &ordo.PollParams{Queues: all, Worker: "w1"})
	require.NoError(t, err)
	require.Empty(t, done.Next, "the join still waits for the other step")
	done, err = eng.CompleteTaskNext(ctx, other.ID, other.Claim, nil, &ordo.PollParams{Queues: []string{"payment"}, Worker: "w2"})
	require.NoError(t, err)
	require.Empty(t, done.Next, "ship is not on the queues w2 asked for")
	ship := pollOne(t, eng, "w3", "shipping")
	require.NoError(t, eng.CompleteTask(ctx, ship.ID, ship.Claim, nil))

	inst, err := eng.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.Len(t, eventsOf(t, eng, id, "step.completed"), 4)
	require.Len(t, eventsOf(t, eng, id, "step.started"), 4, "each step started once")
	require.Equal(t, int64(1), eng.Stats().TakenNext)
}

// chainAtPay starts a chain instance and has w1 poll its pay task.
func chainAtPay(t *testing.T) (*ordo.Engine, *ordo.OpenTask) {
	t.Helper()
	eng, _ := openEngine(t, &ordo.Config{PollInterval: 20 * time.Millisecond})
	deployYAML(t, eng, chainYAML)
	_, err := eng.Start(t.Context(), "chain", nil)
	require.NoError(t, err)
	return eng, pollOne(t, eng, "w1", "payment")
}

func TestRemote_CompleteTaskNextTakesUpToMax(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	eng, pay := chainAtPay(t)
	done, err := eng.CompleteTaskNext(ctx, pay.ID, pay.Claim, nil, &ordo.PollParams{Queues: []string{"stock"}, Worker: "w1", Max: 5})
	require.NoError(t, err)
	require.Len(t, done.Next, 2, "both steps made ready")
	tasks, err := eng.PollTasks(ctx, &ordo.PollParams{Queues: []string{"stock"}, Worker: "w2"})
	require.NoError(t, err)
	require.Empty(t, tasks, "nothing left to poll: both are leased to w1")
}

// Beyond its next task, a completion takes no task that a waiting poll has
// a free slot for: that poll gets it, so a busy worker does not hold what
// an idle one could run.
func TestRemote_CompleteTaskNextLeavesExtrasToAWaitingPoll(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	eng, pay := chainAtPay(t)

	polled := make(chan []*ordo.OpenTask, 1)
	go func() {
		tasks, err := eng.PollTasks(ctx, &ordo.PollParams{Queues: []string{"stock"}, Worker: "w2", Wait: 10 * time.Second})
		if err != nil {
			t.Error(err)
		}
		polled <- tasks
	}()
	require.Eventually(t, func() bool { return testhook.EngineOf(eng).PollWaiting("stock") }, 5*time.Second, time.Millisecond)

	done, err := eng.CompleteTaskNext(ctx, pay.ID, pay.Claim, nil, &ordo.PollParams{Queues: []string{"stock"}, Worker: "w1", Max: 5})
	require.NoError(t, err)
	require.Len(t, done.Next, 1, "the next task only: w2 waits for the other")
	select {
	case tasks := <-polled:
		require.Len(t, tasks, 1)
		require.NotEqual(t, done.Next[0].Step, tasks[0].Step)
		require.Equal(t, "w2", tasks[0].Worker)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting poll got nothing")
	}
	require.Equal(t, int64(1), eng.Stats().HandedOff, "handed over in memory, without a claim query")
}

// A task taken with a completion is leased like a polled one: when the
// worker goes silent, the lease runs out and the task is delivered again,
// and the late result is refused.
func TestRemote_TakenNextTaskIsRedeliveredWhenTheLeaseEnds(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, &ordo.Config{TaskLease: 300 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	ctx := t.Context()
	deployYAML(t, eng, paymentYAML)
	id, err := eng.Start(ctx, "pay", nil)
	require.NoError(t, err)
	charge := pollOne(t, eng, "w1", "payment")
	done, err := eng.CompleteTaskNext(ctx, charge.ID, charge.Claim, nil, &ordo.PollParams{Queues: []string{"shipping"}, Worker: "w1"})
	require.NoError(t, err)
	require.Len(t, done.Next, 1)
	lost := done.Next[0]

	again := pollOne(t, eng, "w2", "shipping")
	require.Equal(t, lost.ID, again.ID)
	require.Equal(t, 2, again.Claim)
	require.ErrorIs(t, eng.CompleteTask(ctx, lost.ID, lost.Claim, nil), ordo.ErrLeaseLost)
	require.NoError(t, eng.CompleteTask(ctx, again.ID, again.Claim, nil))
	// Once the task is done, a late result naming the instance is refused
	// and journaled too, with the worker that took it with its completion.
	require.ErrorIs(t, eng.CompleteTask(ctx, lost.ID, lost.Claim, &ordo.TaskCompletion{InstanceID: id}), ordo.ErrLeaseLost)
	inst, err := eng.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.Len(t, eventsOf(t, eng, id, "step.completed"), 2, "ship completed once")
	rejected := eventsOf(t, eng, id, "step.rejected")
	require.Len(t, rejected, 2)
	for _, r := range rejected {
		require.Equal(t, "ship", r["step"])
		require.Equal(t, "w1", r["worker"])
		require.Equal(t, float64(1), r["claim"])
	}
	require.Contains(t, rejected[1]["reason"], "done")
}

func TestRemote_CompleteTaskNextBadInput(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, &ordo.Config{PollInterval: 20 * time.Millisecond})
	ctx := t.Context()
	deployYAML(t, eng, paymentYAML)
	id, err := eng.Start(ctx, "pay", nil)
	require.NoError(t, err)
	charge := pollOne(t, eng, "w1", "payment")
	for _, next := range []*ordo.PollParams{
		{Worker: "w1"},
		{Queues: []string{"shipping"}},
		{Queues: []string{"ordo.human"}, Worker: "w1"},
	} {
		_, err := eng.CompleteTaskNext(ctx, charge.ID, charge.Claim, nil, next)
		require.ErrorIs(t, err, ordo.ErrInvalid, "%+v", next)
	}
	inst, err := eng.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StepRunning, inst.Step("charge").Status, "a refused completion stores nothing")
	require.NoError(t, eng.CompleteTask(ctx, charge.ID, charge.Claim, nil))
}

// A human step with a timeout that no one completes in time fails its
// attempt with code timeout and takes its onTimeout path; its task is
// done, so a completion after it is refused. One completed in time is not
// touched when the timeout passes.
func TestRemote_HumanTaskTimeout(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	ctx := t.Context()
	def := ordo.NewWorkflow("approve").
		Step(ordo.Human("approve", "manager").Timeout(48 * time.Hour).OnTimeout("escalate")).
		Step(ordo.Task("done", "noop").After("approve")).
		Step(ordo.Task("escalate", "noop")).
		MustBuild()
	_, err := tt.Engine.Register(ctx, def, ordo.Handlers{"noop": func(context.Context, *ordo.StepRequest) (ordo.Result, error) { return ordo.Result{}, nil }})
	require.NoError(t, err)

	late := tt.Start("approve", nil)
	early := tt.Start("approve", nil)
	tt.RunDue()
	open, err := tt.Engine.ListTasks(ctx, &ordo.ListTasksParams{Kind: "human"})
	require.NoError(t, err)
	require.Len(t, open, 2)
	byInstance := map[string]*ordo.OpenTask{}
	for _, task := range open {
		byInstance[task.InstanceID] = task
	}
	require.NoError(t, tt.Engine.CompleteTask(ctx, byInstance[early].ID, 0, &ordo.TaskCompletion{Output: map[string]any{"ok": true}}))

	tt.Clock.Advance(47 * time.Hour)
	tt.RunDue()
	tt.RequireStepStatus(late, "approve", ordo.StepWaiting)

	tt.Clock.Advance(2 * time.Hour)
	tt.RunDue()
	inst := tt.RequireStatus(late, ordo.StatusCompleted)
	require.Equal(t, ordo.StepCompleted, inst.Step("escalate").Status, "the onTimeout path ran")
	require.NotEqual(t, ordo.StepCompleted, inst.Step("done").Status, "the step after approve did not run")
	failed := eventsOf(t, tt.Engine, late, "step.failed")
	require.Len(t, failed, 1)
	require.Equal(t, "timeout", failed[0]["error"].(map[string]any)["code"])
	err = tt.Engine.CompleteTask(ctx, byInstance[late].ID, 0, &ordo.TaskCompletion{Output: map[string]any{"ok": true}})
	require.ErrorIs(t, err, ordo.ErrLeaseLost, "too late: the task timed out")

	inst = tt.RequireStatus(early, ordo.StatusCompleted)
	require.Equal(t, ordo.StepCompleted, inst.Step("done").Status)
	require.Empty(t, eventsOf(t, tt.Engine, early, "step.failed"), "completed in time: the timeout does nothing")
	open, err = tt.Engine.ListTasks(ctx, &ordo.ListTasksParams{Kind: "human"})
	require.NoError(t, err)
	require.Empty(t, open)
}
