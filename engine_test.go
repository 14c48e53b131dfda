package ordo_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotest"
)

func openEngine(t *testing.T, cfg *ordo.Config) (*ordo.Engine, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ordo.db")
	eng, err := ordo.Open(t.Context(), ordo.SQLite(path), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, eng.Close(context.Background())) })
	return eng, path
}

func linear(name string, n int) *ordo.Definition {
	b := ordo.NewWorkflow(name)
	prev := ""
	for i := range n {
		id := fmt.Sprintf("s%d", i+1)
		s := ordo.Task(id, "noop")
		if prev != "" {
			s = s.After(prev)
		}
		b = b.Step(s)
		prev = id
	}
	return b.MustBuild()
}

func noop(context.Context, *ordo.StepRequest) (ordo.Result, error) {
	return ordo.Result{Output: map[string]bool{"ok": true}}, nil
}

func TestEngine_RunsToCompletion(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, nil)
	ctx := t.Context()
	_, err := eng.Register(ctx, linear("lin", 3), ordo.Handlers{"noop": noop})
	require.NoError(t, err)

	id, err := eng.Start(ctx, "lin", map[string]any{"n": 1})
	require.NoError(t, err)
	inst, err := eng.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.JSONEq(t, `{"ok":true}`, string(inst.Output))
	require.Len(t, inst.Steps, 3)
	for _, s := range inst.Steps {
		require.Equal(t, ordo.StepCompleted, s.Status, s.ID)
		require.Equal(t, 1, s.Attempt)
	}

	events, err := eng.Journal(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "workflow.started", events[0].Type)
	require.Equal(t, "workflow.completed", events[len(events)-1].Type)
	for i, e := range events {
		require.Equal(t, int64(i+1), e.Seq, "sequence numbers are gapless")
	}
}

func TestEngine_ParallelBranchesRunInParallel(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, nil)
	ctx := t.Context()
	def := ordo.NewWorkflow("fan").
		Step(ordo.Task("a", "noop")).
		Step(ordo.Task("b1", "slow").After("a")).
		Step(ordo.Task("b2", "slow").After("a")).
		Step(ordo.Task("b3", "slow").After("a")).
		Step(ordo.Task("join", "noop").After("b1", "b2", "b3")).
		MustBuild()
	var running, peak atomic.Int32
	release := make(chan struct{})
	slow := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if n == 3 {
			close(release)
		}
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		return ordo.Result{Output: req.Step}, nil
	}
	_, err := eng.Register(ctx, def, ordo.Handlers{"noop": noop, "slow": slow})
	require.NoError(t, err)
	id, err := eng.Start(ctx, "fan", nil)
	require.NoError(t, err)
	inst, err := eng.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.Equal(t, int32(3), peak.Load(), "the three branches ran at the same time")
	require.JSONEq(t, `{"b1":"b1","b2":"b2","b3":"b3"}`, string(inst.Step("join").Input))
}

func TestEngine_ConcurrentStartsWithIdempotencyKeys(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, nil)
	ctx := t.Context()
	_, err := eng.Register(ctx, linear("idem", 1), ordo.Handlers{"noop": noop})
	require.NoError(t, err)

	const starts, keys = 1000, 200
	ids := make([]string, starts)
	var wg sync.WaitGroup
	errs := make(chan error, starts)
	for i := range starts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := eng.Start(ctx, "idem", map[string]int{"i": i}, ordo.IdempotencyKey(fmt.Sprintf("key-%d", i%keys)))
			if err != nil {
				errs <- err
				return
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	distinct := map[string]bool{}
	for i, id := range ids {
		require.Equal(t, ids[i%keys], id, "every start with key-%d returns the same instance", i%keys)
		distinct[id] = true
	}
	require.Len(t, distinct, keys)
	all, err := eng.List(ctx, &ordo.ListParams{Workflow: "idem", Limit: 10000})
	require.NoError(t, err)
	require.Len(t, all, keys, "exactly one instance per key is stored")
}

func TestEngine_IdempotencyKeyFromDefinition(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, nil)
	ctx := t.Context()
	def := ordo.NewWorkflow("keyed").IdempotencyKey("input.orderId").BusinessKey("input.orderId").
		Step(ordo.Task("a", "noop")).MustBuild()
	_, err := eng.Register(ctx, def, ordo.Handlers{"noop": noop})
	require.NoError(t, err)
	id1, err := eng.Start(ctx, "keyed", map[string]any{"orderId": "A-1", "n": 1})
	require.NoError(t, err)
	id2, err := eng.Start(ctx, "keyed", map[string]any{"orderId": "A-1", "n": 2})
	require.NoError(t, err)
	require.Equal(t, id1, id2)
	inst, err := eng.Wait(ctx, id1)
	require.NoError(t, err)
	require.Equal(t, "A-1", inst.BusinessKey)
	require.JSONEq(t, `{"orderId":"A-1","n":1}`, string(inst.Input), "the second start changed nothing")

	_, err = eng.Start(ctx, "keyed", map[string]any{"other": 1})
	require.ErrorIs(t, err, ordo.ErrInvalid, "a key that cannot be computed is bad input")
}

func TestEngine_BadInputStoresNothing(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, nil)
	ctx := t.Context()
	_, err := eng.Register(ctx, linear("w", 1), ordo.Handlers{"noop": noop})
	require.NoError(t, err)
	store := eng.Store()
	defsBefore, err := store.ListDefinitions(ctx)
	require.NoError(t, err)

	for _, tc := range []struct {
		name  string
		input any
	}{
		{"truncated", json.RawMessage(`{"a":`)},
		{"two values", []byte(`{} {}`)},
		{"not json", []byte(`orderId=1`)},
	} {
		_, err := eng.Start(ctx, "w", tc.input)
		require.ErrorIs(t, err, ordo.ErrInvalid, tc.name)
		require.ErrorContains(t, err, "not valid JSON", tc.name)
	}
	_, err = eng.Start(ctx, "nope", nil)
	require.ErrorIs(t, err, ordo.ErrNotFound)
	require.ErrorContains(t, err, `unknown workflow "nope"`)

	for _, src := range []string{
		"workflow: w\nsteps: [\n", // bad YAML
		"workflow: w\nsteps:\n  - id: a\n    after: [b]\n    task: {handler: noop}\n  - id: b\n    after: [a]\n    task: {handler: noop}\n", // cycle
		"workflow: w\nsteps:\n  - id: a\n    after: [zzz]\n    task: {handler: noop}\n",                                                     // unknown step
		"workflow: w\nsteps:\n  - id: a\n    when: 'input.'\n    task: {handler: noop}\n",                                                   // bad CEL
	} {
		_, err := ordo.ParseDefinition([]byte(src), "w.yaml")
		require.ErrorIs(t, err, ordo.ErrInvalid, src)
		require.ErrorContains(t, err, "w.yaml:", "the error says where")
	}
	_, err = eng.Register(ctx, ordo.NewWorkflow("w2").Step(ordo.Task("s1", "missing")).MustBuild(), nil)
	require.ErrorIs(t, err, ordo.ErrInvalid, "a task step without a handler")
	require.ErrorContains(t, err, `step "s1" needs handler "missing"`)

	insts, err := store.ListInstances(ctx, &ordostore.ListInstancesParams{})
	require.NoError(t, err)
	require.Empty(t, insts, "no instance was stored")
	defsAfter, err := store.ListDefinitions(ctx)
	require.NoError(t, err)
	require.Equal(t, defsBefore, defsAfter, "no definition was stored")
}

func TestEngine_VersionsArePinned(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	ctx := t.Context()
	v1 := ordo.NewWorkflow("ver").Step(ordo.Task("a", "gate")).Step(ordo.Task("b", "v1").After("a")).MustBuild()
	v2 := ordo.NewWorkflow("ver").Step(ordo.Task("a", "gate")).Step(ordo.Task("b2", "v2").After("a")).MustBuild()
	gate := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		if req.Attempt == 1 {
			return ordo.Result{}, errors.New("not yet") // keeps the instance in flight across the deploy
		}
		return ordo.Result{}, nil
	}
	mark := func(tag string) ordo.Handler {
		return func(context.Context, *ordo.StepRequest) (ordo.Result, error) { return ordo.Result{Output: tag}, nil }
	}
	n1, err := tt.Engine.Register(ctx, v1, ordo.Handlers{"gate": gate, "v1": mark("v1")})
	require.NoError(t, err)
	require.Equal(t, 1, n1)
	n1again, err := tt.Engine.Register(ctx, v1, nil)
	require.NoError(t, err)
	require.Equal(t, 1, n1again, "registering the same definition again is not a new version")

	old := tt.Start("ver", nil)
	n2, err := tt.Engine.Register(ctx, v2, ordo.Handlers{"v2": mark("v2")})
	require.NoError(t, err)
	require.Equal(t, 2, n2)
	fresh := tt.Start("ver", nil)
	tt.RunUntilIdle()

	a := tt.RequireStatus(old, ordo.StatusCompleted)
	require.Equal(t, 1, a.Version)
	require.JSONEq(t, `"v1"`, string(a.Output), "the in-flight instance finished on v1")
	b := tt.RequireStatus(fresh, ordo.StatusCompleted)
	require.Equal(t, 2, b.Version)
	require.JSONEq(t, `"v2"`, string(b.Output))

	pinned, err := tt.Engine.Start(ctx, "ver", nil, ordo.Version(1))
	require.NoError(t, err)
	tt.RunUntilIdle()
	require.Equal(t, 1, tt.RequireStatus(pinned, ordo.StatusCompleted).Version)
}

func TestEngine_RetriesParkAndResubmit(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	ctx := t.Context()
	def := ordo.NewWorkflow("rev").
		Retry(ordo.RetryPolicy{MaxAttempts: 3, InitialInterval: time.Minute, BackoffFactor: 2, MaxInterval: time.Hour}).
		OnFailure(ordo.FailureReview).
		Step(ordo.Task("charge", "charge")).
		Step(ordo.Task("done", "noop").After("charge")).
		MustBuild()
	var fixed atomic.Bool
	var calls atomic.Int32
	charge := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		calls.Add(1)
		if !fixed.Load() {
			return ordo.Result{}, errors.New("card declined")
		}
		return ordo.Result{Output: "charged"}, nil
	}
	_, err := tt.Engine.Register(ctx, def, ordo.Handlers{"charge": charge, "noop": noop})
	require.NoError(t, err)
	start := tt.Clock.Now()
	id := tt.Start("rev", nil)
	tt.RunUntilIdle()

	inst := tt.RequireStatus(id, ordo.StatusReview)
	require.Equal(t, int32(3), calls.Load(), "three attempts")
	require.Equal(t, "card declined", inst.Error.Message)
	waited := tt.Clock.Now().Sub(start)
	require.True(t, waited >= 144*time.Second && waited <= 216*time.Second, "backoff 1m then 2m (±20%% jitter) on the fake clock, got %s", waited)

	err = tt.Engine.Resubmit(ctx, id, &ordo.ResubmitOptions{From: "nope"})
	require.ErrorIs(t, err, ordo.ErrInvalid)

	fixed.Store(true)
	require.NoError(t, tt.Engine.Resubmit(ctx, id, &ordo.ResubmitOptions{Reason: "card updated"}))
	tt.RunUntilIdle()
	inst = tt.RequireStatus(id, ordo.StatusCompleted)
	require.Equal(t, 4, inst.Step("charge").Attempt, "attempt numbers keep growing across a resubmit")

	err = tt.Engine.Resubmit(ctx, id, nil)
	require.ErrorIs(t, err, ordo.ErrInvalid, "a completed instance cannot be resubmitted")
}

func TestEngine_SideEffectsCarryIdempotencyKeys(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	ctx := t.Context()
	def := ordo.NewWorkflow("fx").Step(ordo.Task("a", "a").WaitEffects()).Step(ordo.Task("b", "noop").After("a")).MustBuild()
	var mu sync.Mutex
	var seen []string
	fails := 2
	tt.Engine.HandleEffect("email", func(ctx context.Context, req *ordo.EffectRequest) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, fmt.Sprintf("%s#%d", req.IdempotencyKey, req.Attempt))
		if fails > 0 {
			fails--
			return errors.New("smtp down")
		}
		return nil
	})
	a := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		return ordo.Result{SideEffects: []ordo.SideEffect{{Type: "email", Payload: map[string]string{"to": "x@y"}}}}, nil
	}
	_, err := tt.Engine.Register(ctx, def, ordo.Handlers{"a": a, "noop": noop})
	require.NoError(t, err)
	id := tt.Start("fx", nil)
	tt.RunUntilIdle()
	tt.RequireStatus(id, ordo.StatusCompleted)
	key := id + "/a/1/0"
	require.Equal(t, []string{key + "#1", key + "#2", key + "#3"}, seen, "the same key on every try")

	events, err := tt.Engine.Journal(ctx, id)
	require.NoError(t, err)
	var kinds []string
	for _, e := range events {
		if e.Step == "a" || e.Step == "b" {
			kinds = append(kinds, e.Type+":"+e.Step)
		}
	}
	require.Equal(t, []string{
		"step.scheduled:a", "step.completed:a", "effect.scheduled:a",
		"effect.failed:a", "effect.failed:a", "effect.completed:a",
		"step.scheduled:b", "step.completed:b",
	}, kinds, "b waited for a's side effect")
}

func TestEngine_UnknownEffectTypeFailsTheStep(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	def := ordo.NewWorkflow("fx2").Step(ordo.Task("a", "a")).MustBuild()
	a := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		return ordo.Result{SideEffects: []ordo.SideEffect{{Type: "fax"}}}, nil
	}
	_, err := tt.Engine.Register(t.Context(), def, ordo.Handlers{"a": a})
	require.NoError(t, err)
	id := tt.Start("fx2", nil)
	tt.RunUntilIdle()
	inst := tt.RequireStatus(id, ordo.StatusFailed)
	require.Contains(t, inst.Error.Message, `no interpreter registered for type "fax"`)
	require.Equal(t, 1, inst.Step("a").Attempt, "a non-retryable error is not retried")
}

func TestEngine_Cancel(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	ctx := t.Context()
	def := ordo.NewWorkflow("c").Step(ordo.Timer("wait", 7*24*time.Hour)).Step(ordo.Task("after", "noop").After("wait")).MustBuild()
	_, err := tt.Engine.Register(ctx, def, ordo.Handlers{"noop": noop})
	require.NoError(t, err)
	id := tt.Start("c", nil)
	require.NoError(t, tt.Engine.Cancel(ctx, id, "customer asked"))
	tt.RunUntilIdle()
	inst := tt.RequireStatus(id, ordo.StatusCancelled)
	require.Equal(t, ordo.StepWaiting, inst.Step("wait").Status)
	require.Equal(t, ordo.StepPending, inst.Step("after").Status, "nothing ran after the cancel")
	require.ErrorIs(t, tt.Engine.Cancel(ctx, id, ""), ordo.ErrInvalid)
	require.ErrorIs(t, tt.Engine.Cancel(ctx, "no-such-id", ""), ordo.ErrNotFound)
}

func TestEngine_TimerWaitsOnTheClock(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	def := ordo.NewWorkflow("t").Step(ordo.Timer("wait", 7*24*time.Hour)).Step(ordo.Task("after", "noop").After("wait")).MustBuild()
	_, err := tt.Engine.Register(t.Context(), def, ordo.Handlers{"noop": noop})
	require.NoError(t, err)
	start := tt.Clock.Now()
	id := tt.Start("t", nil)
	tt.RequireStatus(id, ordo.StatusWaiting)
	tt.RequireStepStatus(id, "wait", ordo.StepWaiting)
	tt.RunUntilIdle()
	tt.RequireStatus(id, ordo.StatusCompleted)
	require.Equal(t, start.Add(7*24*time.Hour), tt.Clock.Now())
}

// TestEngine_JournalFoldsToReadModel checks, for instances that completed,
// retried, failed, were skipped and resubmitted, that folding the journal
// reproduces the stored instance row.
func TestEngine_JournalFoldsToReadModel(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	ctx := t.Context()
	def := ordo.NewWorkflow("fold").
		Retry(ordo.RetryPolicy{MaxAttempts: 2, InitialInterval: time.Second}).
		OnFailure(ordo.FailureReview).
		Step(ordo.Task("a", "flaky")).
		Step(ordo.Task("b", "noop").After("a")).
		Step(ordo.Task("c", "noop").After("a").When("input.n % 2 == 0")).
		Step(ordo.Task("d", "fx").After("b", "c")).
		MustBuild()
	flaky := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		var in struct{ N int }
		_ = req.BindWorkflowInput(&in)
		if in.N%3 == 0 && req.Attempt < 2 {
			return ordo.Result{}, errors.New("flaky")
		}
		if in.N%5 == 0 && req.Attempt < 3 {
			return ordo.Result{}, errors.New("broken")
		}
		return ordo.Result{Output: in.N, State: map[string]int{"n": in.N}}, nil
	}
	fx := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		return ordo.Result{SideEffects: []ordo.SideEffect{ordo.LogEffect("done", nil)}}, nil
	}
	_, err := tt.Engine.Register(ctx, def, ordo.Handlers{"flaky": flaky, "noop": noop, "fx": fx})
	require.NoError(t, err)
	var ids []string
	for n := range 30 {
		ids = append(ids, tt.Start("fold", map[string]int{"n": n}))
	}
	tt.RunUntilIdle()
	for _, id := range ids {
		if inst := tt.Get(id); inst.Status == ordo.StatusReview {
			require.NoError(t, tt.Engine.Resubmit(ctx, id, nil))
		}
	}
	tt.RunUntilIdle()

	store := tt.Engine.Store()
	statuses := map[ordo.Status]int{}
	for _, id := range ids {
		row, err := store.GetInstance(ctx, id)
		require.NoError(t, err)
		statuses[row.Status]++
		rows, err := store.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: id})
		require.NoError(t, err)
		events := make([]*journal.Event, len(rows))
		for i, r := range rows {
			events[i] = &journal.Event{Seq: r.Seq, Type: journal.Type(r.Type), Step: r.StepID, Attempt: r.Attempt, Time: r.CreatedAt}
			require.NoError(t, journal.UnmarshalData(r.Data, events[i]))
		}
		folded, err := journal.Fold(id, events)
		require.NoError(t, err)
		var stored journal.State
		require.NoError(t, json.Unmarshal(row.State, &stored))
		want, _ := json.Marshal(&stored)
		got, _ := json.Marshal(folded)
		require.JSONEq(t, string(want), string(got), "instance %s: fold(journal) == read model", id)
		require.Equal(t, row.Seq, folded.Seq)
		require.Equal(t, row.Status, folded.Status)
	}
	require.Equal(t, map[ordo.Status]int{ordo.StatusCompleted: 30}, statuses)
}

func TestEngine_Definitions(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, nil)
	ctx := t.Context()
	_, err := eng.Deploy(ctx, linear("a", 1))
	require.NoError(t, err)
	_, err = eng.Deploy(ctx, linear("a", 2))
	require.NoError(t, err)
	_, err = eng.Deploy(ctx, linear("b", 1))
	require.NoError(t, err)
	defs, err := eng.Definitions(ctx)
	require.NoError(t, err)
	require.Len(t, defs, 2)
	require.Equal(t, "a", defs[0].Name)
	require.Equal(t, 2, defs[0].Version, "the latest version")
	require.Equal(t, linear("a", 2).Hash(), defs[0].Definition.Hash())

	v1, err := eng.DefinitionVersion(ctx, "a", 1)
	require.NoError(t, err)
	require.Equal(t, linear("a", 1).Hash(), v1.Hash)
	_, err = eng.DefinitionVersion(ctx, "nope", 0)
	require.ErrorIs(t, err, ordo.ErrNotFound)
}

// TestEngine_LongStepKeepsItsLease runs a step three times as long as the
// lease: the lease is renewed while it runs, so it is not claimed and run a
// second time.
func TestEngine_LongStepKeepsItsLease(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, &ordo.Config{LeaseDuration: 600 * time.Millisecond, PollInterval: 20 * time.Millisecond})
	ctx := t.Context()
	var runs atomic.Int32
	slow := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		runs.Add(1)
		time.Sleep(1800 * time.Millisecond)
		return ordo.Result{}, nil
	}
	_, err := eng.Register(ctx, ordo.NewWorkflow("long").Step(ordo.Task("slow", "slow")).MustBuild(), ordo.Handlers{"slow": slow})
	require.NoError(t, err)
	id, err := eng.Start(ctx, "long", nil)
	require.NoError(t, err)
	// Without renewals every run outlives its lease and is claimed again,
	// for ever.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	inst, err := eng.Wait(wctx, id)
	require.NoError(t, err, "ran %d times", runs.Load())
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.Equal(t, int32(1), runs.Load(), "the step ran once")
	require.Equal(t, 1, inst.Step("slow").Attempt)
}

func TestEngine_RefusesWhatItDoesNotRunYet(t *testing.T) {
	t.Parallel()
	eng, _ := openEngine(t, nil)
	ctx := t.Context()
	for _, src := range []string{
		"workflow: e\nsteps:\n  - id: s\n    human: {role: manager}\n",
	} {
		def, err := ordo.ParseDefinition([]byte(src), "w.yaml")
		require.NoError(t, err, src)
		_, err = eng.Deploy(ctx, def)
		require.ErrorIs(t, err, ordo.ErrInvalid, src)
		require.ErrorContains(t, err, "does not run yet", src)
	}
	defs, err := eng.Definitions(ctx)
	require.NoError(t, err)
	require.Empty(t, defs, "nothing was stored")
}

func TestEngine_ErrorCodesReachTheJournal(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	def := ordo.NewWorkflow("coded").Step(ordo.Task("charge", "charge")).MustBuild()
	charge := func(context.Context, *ordo.StepRequest) (ordo.Result, error) {
		return ordo.Result{}, ordo.NonRetryable(ordo.WithCode("card_declined", errors.New("insufficient funds")))
	}
	_, err := tt.Engine.Register(t.Context(), def, ordo.Handlers{"charge": charge})
	require.NoError(t, err)
	id := tt.Start("coded", nil)
	tt.RunUntilIdle()
	inst := tt.RequireStatus(id, ordo.StatusFailed)
	require.Equal(t, &ordo.Error{Message: "insufficient funds", Code: "card_declined", Step: "charge"}, inst.Error)
	s := tt.RequireStepStatus(id, "charge", ordo.StepFailed)
	require.Equal(t, "card_declined", s.Error.Code)
}
