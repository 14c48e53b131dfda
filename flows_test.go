package ordo_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordotest"
)

func mustParse(t *testing.T, src string) *ordo.Definition {
	t.Helper()
	def, err := ordo.ParseDefinition([]byte(src), "test.yaml")
	require.NoError(t, err)
	return def
}

func journalTypes(t *testing.T, eng *ordo.Engine, id string) []string {
	t.Helper()
	evs, err := eng.Journal(context.Background(), id)
	require.NoError(t, err)
	var out []string
	for _, e := range evs {
		s := e.Type
		if e.Step != "" {
			s += ":" + e.Step
		}
		out = append(out, s)
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

const receiveWorkflow = `
workflow: await-card
steps:
  - id: wait
    receive: {message: CardUpdated, correlate: input.order, timeout: 168h}
    onTimeout: give-up
  - {id: charge, after: [wait], task: {handler: charge}}
  - {id: give-up, task: {handler: give-up}}
`

func receiveTester(t *testing.T) *ordotest.Tester {
	tt := ordotest.New(t, nil)
	_, err := tt.Engine.Register(context.Background(), mustParse(t, receiveWorkflow), ordo.Handlers{
		"charge": func(_ context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			return ordo.Result{Output: req.Input}, nil
		},
		"give-up": noop,
	})
	require.NoError(t, err)
	return tt
}

func TestReceive_MessageAfterWait(t *testing.T) {
	t.Parallel()
	tt := receiveTester(t)
	ctx := t.Context()
	id := tt.Start("await-card", map[string]any{"order": "o-1"})
	tt.RunDue()
	tt.RequireStatus(id, ordo.StatusWaiting)
	require.Equal(t, "o-1", tt.Get(id).Step("wait").Key)

	res, err := tt.Engine.Send(ctx, "CardUpdated", "o-1", map[string]string{"card": "4242"}, &ordo.SendOptions{MessageID: "m-1"})
	require.NoError(t, err)
	require.Equal(t, []string{id}, res.DeliveredTo)
	tt.RunUntilIdle()
	inst := tt.RequireStatus(id, ordo.StatusCompleted)
	require.JSONEq(t, `{"card":"4242"}`, string(inst.Output))
	require.Equal(t, "m-1", inst.Step("wait").MessageID)

	// The same message again is a duplicate: nothing happens.
	res, err = tt.Engine.Send(ctx, "CardUpdated", "o-1", map[string]string{"card": "4242"}, &ordo.SendOptions{MessageID: "m-1"})
	require.NoError(t, err)
	require.True(t, res.Duplicate)
	require.Equal(t, 1, count(journalTypes(t, tt.Engine, id), "step.completed:wait"))
}

func TestReceive_MessageBeforeWait(t *testing.T) {
	t.Parallel()
	tt := receiveTester(t)
	ctx := t.Context()
	res, err := tt.Engine.Send(ctx, "CardUpdated", "o-2", map[string]string{"card": "early"}, &ordo.SendOptions{MessageID: "m-2"})
	require.NoError(t, err)
	require.Empty(t, res.DeliveredTo, "nobody waits yet: the message is kept")

	// Sent twice before anyone waits: still one message.
	res, err = tt.Engine.Send(ctx, "CardUpdated", "o-2", map[string]string{"card": "early"}, &ordo.SendOptions{MessageID: "m-2"})
	require.NoError(t, err)
	require.True(t, res.Duplicate)

	a := tt.Start("await-card", map[string]any{"order": "o-2"})
	b := tt.Start("await-card", map[string]any{"order": "o-2"})
	tt.Clock.Advance(time.Hour)
	tt.RunUntilIdle() // b times out after 7 days: only one instance got the message
	got, timedOut := 0, 0
	for _, id := range []string{a, b} {
		inst := tt.RequireStatus(id, ordo.StatusCompleted)
		switch inst.Step("wait").Status {
		case ordo.StepCompleted:
			got++
			require.JSONEq(t, `{"card":"early"}`, string(inst.Output))
			require.Equal(t, "m-2", inst.Step("wait").MessageID)
		case ordo.StepFailed:
			timedOut++
			require.Equal(t, "timeout", inst.Step("wait").Error.Code)
			require.Equal(t, ordo.StepCompleted, inst.Step("give-up").Status)
		}
	}
	require.Equal(t, 1, got, "exactly one instance consumed the message")
	require.Equal(t, 1, timedOut, "the other found none and timed out")
}

func TestReceive_UnknownKeyExpires(t *testing.T) {
	t.Parallel()
	tt := receiveTester(t)
	ctx := t.Context()
	_, err := tt.Engine.Send(ctx, "CardUpdated", "nobody", map[string]string{}, &ordo.SendOptions{TTL: time.Hour})
	require.NoError(t, err)
	tt.Clock.Advance(2 * time.Hour)
	tt.RunUntilIdle()
	require.Equal(t, int64(1), tt.Engine.Stats().MessagesDropped)

	// An instance that waits for that key later does not get it.
	id := tt.Start("await-card", map[string]any{"order": "nobody"})
	tt.RunUntilIdle()
	require.Equal(t, ordo.StepFailed, tt.Get(id).Step("wait").Status)
}

func TestReceive_Broadcast(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	ctx := t.Context()
	_, err := tt.Engine.Register(ctx, mustParse(t, `
workflow: listen
steps:
  - {id: wait, receive: {message: PriceChanged, correlate: "'all'", broadcast: true}}
`), nil)
	require.NoError(t, err)
	ids := []string{tt.Start("listen", nil), tt.Start("listen", nil), tt.Start("listen", nil)}
	tt.RunUntilIdle() // no deadline: they wait
	res, err := tt.Engine.Send(ctx, "PriceChanged", "all", map[string]int{"price": 3}, nil)
	require.NoError(t, err)
	sort.Strings(res.DeliveredTo)
	sort.Strings(ids)
	require.Equal(t, ids, res.DeliveredTo)
	tt.RunUntilIdle()
	for _, id := range ids {
		tt.RequireStatus(id, ordo.StatusCompleted)
	}
}

func TestSaga_CompensatesCompletedStepsInReverse(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	ctx := t.Context()
	var mu sync.Mutex
	var undone []string
	undo := func(name string) ordo.Handler {
		return func(_ context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			mu.Lock()
			undone = append(undone, name)
			mu.Unlock()
			return ordo.Result{}, nil
		}
	}
	_, err := tt.Engine.Register(ctx, mustParse(t, `
workflow: trip
onFailure: compensate
steps:
  - {id: flight, task: {handler: ok}, compensate: {task: {handler: undo-flight}}}
  - {id: hotel, after: [flight], task: {handler: ok}, compensate: {task: {handler: undo-hotel}}}
  - {id: car, after: [hotel], task: {handler: ok}, compensate: {task: {handler: undo-car}}}
  - {id: pay, after: [car], task: {handler: fail}, retry: {maxAttempts: 2, initialInterval: 1s}}
`), ordo.Handlers{
		"ok": noop,
		"fail": func(context.Context, *ordo.StepRequest) (ordo.Result, error) {
			return ordo.Result{}, errors.New("card declined")
		},
		"undo-flight": undo("flight"), "undo-hotel": undo("hotel"), "undo-car": undo("car"),
	})
	require.NoError(t, err)
	id := tt.Start("trip", nil)
	tt.RunUntilIdle()
	inst := tt.RequireStatus(id, ordo.StatusCompensated)
	require.Equal(t, []string{"car", "hotel", "flight"}, undone)
	for _, s := range []string{"flight", "hotel", "car"} {
		require.Equal(t, ordo.StepCompensated, inst.Step(s).Status)
		require.Equal(t, ordo.StepCompleted, inst.Step(s+".compensate").Status)
	}
	types := journalTypes(t, tt.Engine, id)
	require.Equal(t, 1, count(types, "workflow.compensating"))
	require.Equal(t, 1, count(types, "workflow.compensated"))
	require.Equal(t, 3, count(types, "step.compensated:car")+count(types, "step.compensated:hotel")+count(types, "step.compensated:flight"))
}

func TestChildWorkflows_NestAndCancel(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	ctx := t.Context()
	_, err := tt.Engine.Register(ctx, mustParse(t, `
workflow: leaf
steps:
  - {id: double, task: {handler: double}}
`), ordo.Handlers{"double": func(_ context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		var in struct{ N int }
		if err := req.Bind(&in); err != nil {
			return ordo.Result{}, err
		}
		return ordo.Result{Output: map[string]int{"n": in.N * 2}}, nil
	}})
	require.NoError(t, err)
	_, err = tt.Engine.Deploy(ctx, mustParse(t, `
workflow: middle
steps:
  - {id: call, workflow: {name: leaf, input: "{'n': input.n + 1}"}}
`))
	require.NoError(t, err)
	_, err = tt.Engine.Deploy(ctx, mustParse(t, `
workflow: top
steps:
  - {id: call, workflow: {name: middle}}
`))
	require.NoError(t, err)

	id := tt.Start("top", map[string]int{"n": 20})
	tt.RunUntilIdle()
	top := tt.RequireStatus(id, ordo.StatusCompleted)
	require.JSONEq(t, `{"n":42}`, string(top.Output))
	mid := tt.Get(top.Step("call").Child)
	require.Equal(t, id, mid.ParentID, "the parent link is visible in both instances")
	require.Equal(t, "call", mid.ParentStep)
	leaf := tt.Get(mid.Step("call").Child)
	require.Equal(t, mid.ID, leaf.ParentID)

	// Cancel reaches every level.
	_, err = tt.Engine.Deploy(ctx, mustParse(t, `
workflow: slow
steps:
  - {id: nap, timer: {duration: 72h}}
`))
	require.NoError(t, err)
	_, err = tt.Engine.Deploy(ctx, mustParse(t, `
workflow: outer
steps:
  - {id: call, workflow: {name: slow}}
`))
	require.NoError(t, err)
	outer := tt.Start("outer", nil)
	tt.RunDue()
	child := tt.Get(outer).Step("call").Child
	require.NotEmpty(t, child)
	tt.RequireStatus(child, ordo.StatusWaiting)
	require.NoError(t, tt.Engine.Cancel(ctx, outer, "order withdrawn"))
	tt.RunDue()
	tt.RequireStatus(outer, ordo.StatusCancelled)
	tt.RequireStatus(child, ordo.StatusCancelled)
}

func TestDeadline_TimesOutTheWorkflow(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	ctx := t.Context()
	_, err := tt.Engine.Deploy(ctx, mustParse(t, `
workflow: quick
timeout: 1h
steps:
  - {id: nap, timer: {duration: 2h}}
`))
	require.NoError(t, err)
	id := tt.Start("quick", nil)
	tt.RunUntilIdle()
	inst := tt.RequireStatus(id, ordo.StatusFailed)
	require.Equal(t, "timeout", inst.Error.Code)
}

func TestDeferred_OneRunningPerKeyInStartOrder(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, &ordo.Config{PollInterval: 50 * time.Millisecond})
	ctx := t.Context()
	var mu sync.Mutex
	running, maxRunning := map[string]int{}, 0
	_, err := eng.Register(ctx, mustParse(t, `
workflow: per-customer
concurrencyKey: input.customer
steps:
  - {id: work, task: {handler: work}}
`), ordo.Handlers{"work": func(_ context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		var in struct{ Customer string }
		_ = req.Bind(&in)
		mu.Lock()
		running[in.Customer]++
		maxRunning = max(maxRunning, running[in.Customer])
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		running[in.Customer]--
		mu.Unlock()
		return ordo.Result{}, nil
	}})
	require.NoError(t, err)

	var ids []string
	for range 50 {
		id, err := eng.Start(ctx, "per-customer", map[string]string{"customer": "c-1"})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	other, err := eng.Start(ctx, "per-customer", map[string]string{"customer": "c-2"})
	require.NoError(t, err)

	type span struct{ admitted, done time.Time }
	spans := make([]span, len(ids))
	for i, id := range ids {
		inst, err := eng.Wait(ctx, id)
		require.NoError(t, err)
		require.Equal(t, ordo.StatusCompleted, inst.Status)
		evs, err := eng.Journal(ctx, id)
		require.NoError(t, err)
		for _, e := range evs {
			switch e.Type {
			case "workflow.admitted":
				spans[i].admitted = e.Time
			case "workflow.completed":
				spans[i].done = e.Time
			}
		}
		require.False(t, spans[i].admitted.IsZero(), "instance %d was deferred, then admitted", i)
	}
	for i := 1; i < len(spans); i++ {
		require.False(t, spans[i].admitted.Before(spans[i-1].done),
			"instance %d was admitted at %s, before instance %d completed at %s", i, spans[i].admitted, i-1, spans[i-1].done)
	}
	require.Equal(t, 1, maxRunning)
	inst, err := eng.Wait(ctx, other)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, inst.Status, "another key does not wait")
}

func TestDeferred_MaxConcurrent(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, &ordo.Config{PollInterval: 50 * time.Millisecond})
	ctx := t.Context()
	var mu sync.Mutex
	running, peak := 0, 0
	_, err := eng.Register(ctx, mustParse(t, `
workflow: limited
maxConcurrent: 3
steps:
  - {id: a, task: {handler: work}}
  - {id: b, after: [a], task: {handler: work}}
`), ordo.Handlers{"work": func(_ context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		time.Sleep(3 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return ordo.Result{}, nil
	}})
	require.NoError(t, err)
	var ids []string
	for range 20 {
		id, err := eng.Start(ctx, "limited", nil)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for _, id := range ids {
		inst, err := eng.Wait(ctx, id)
		require.NoError(t, err)
		require.Equal(t, ordo.StatusCompleted, inst.Status)
	}
	require.LessOrEqual(t, peak, 3, "never more than maxConcurrent instances at once")
	require.Equal(t, int64(20), eng.Stats().Admitted)
}
