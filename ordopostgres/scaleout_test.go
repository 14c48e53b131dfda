package ordopostgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordostore"
)

// newNode starts an engine on schema with cfg (Logger and NodeID filled
// in) and stops it at the end of the test.
func newNode(t *testing.T, schema, name string, cfg ordo.Config) *ordo.Engine {
	t.Helper()
	ctx := t.Context()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.NodeID = name
	eng, err := ordo.New(ctx, openSchema(t, schema), &cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, eng.Close(context.WithoutCancel(ctx))) })
	return eng
}

// waitStatus polls the store until instance id has status want, or fails
// the test after limit. It reads the store, not a node, so it sees what
// any node did.
func waitStatus(t *testing.T, s ordostore.Store, id string, want ordo.Status, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		inst, err := s.GetInstance(t.Context(), id)
		require.NoError(t, err)
		if inst.Status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s is %s after %s, want %s", id, inst.Status, limit, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRolesSplitAcrossNodes: an API-only node commits starts and runs no
// step; an executor-only node on the same schema runs them all.
func TestRolesSplitAcrossNodes(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	ctx := t.Context()

	var mu sync.Mutex
	ranOn := map[string]int{} // node → steps run
	handler := func(node string) ordo.Handler {
		return func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			mu.Lock()
			ranOn[node]++
			mu.Unlock()
			return ordo.Result{Output: req.Step}, nil
		}
	}
	def := ordo.NewWorkflow("split").
		Step(ordo.Task("a", "work")).
		Step(ordo.Task("b", "work").After("a")).
		MustBuild()

	api := newNode(t, schema, "api", ordo.Config{Roles: []string{ordo.RoleAPI}, PollInterval: 20 * time.Millisecond})
	_, err := api.Register(ctx, def, ordo.Handlers{"work": handler("api")})
	require.NoError(t, err)
	const n = 10
	var ids []string
	for i := range n {
		id, err := api.Start(ctx, "split", map[string]int{"i": i})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	// Alone, the API node leaves the work waiting in the store.
	time.Sleep(300 * time.Millisecond)
	store := api.Store()
	for _, id := range ids {
		inst, err := store.GetInstance(ctx, id)
		require.NoError(t, err)
		require.Equal(t, ordo.StatusRunning, inst.Status)
		tasks, err := store.CountTasks(ctx, &ordostore.CountTasksParams{InstanceID: id})
		require.NoError(t, err)
		require.Equal(t, 1, tasks, "instance %s", id)
	}
	mu.Lock()
	require.Zero(t, ranOn["api"], "the API-only node ran steps")
	mu.Unlock()

	exec := newNode(t, schema, "executor", ordo.Config{Roles: []string{ordo.RoleExecutor}, PollInterval: 20 * time.Millisecond})
	_, err = exec.Register(ctx, def, ordo.Handlers{"work": handler("executor")})
	require.NoError(t, err)
	for _, id := range ids {
		waitStatus(t, store, id, ordo.StatusCompleted, 30*time.Second)
	}
	// Started on the executor node too: its steps stay there.
	id, err := exec.Start(ctx, "split", map[string]int{"i": n})
	require.NoError(t, err)
	inst, err := exec.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, inst.Status)

	mu.Lock()
	defer mu.Unlock()
	require.Zero(t, ranOn["api"], "the API-only node ran steps")
	require.Equal(t, 2*(n+1), ranOn["executor"])
}

func TestRolesAreValidated(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)

	_, err := ordo.New(t.Context(), openSchema(t, schema), &ordo.Config{Roles: []string{"api", "worker"}})
	require.ErrorContains(t, err, `unknown role "worker"`)
	_, err = ordo.ParseRoles("api,api")
	require.ErrorContains(t, err, `role "api" is given twice`)
	roles, err := ordo.ParseRoles(" api , timers")
	require.NoError(t, err)
	require.Equal(t, []string{"api", "timers"}, roles)
}

// TestNotifyWakesIdleNode: with a 10 s poll, each step waits for the other
// node's handler; only the wake-ups sent at commit make it finish in
// seconds.
func TestNotifyWakesIdleNode(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	ctx := t.Context()

	def := ordo.NewWorkflow("pingpong").
		Step(ordo.Task("ping", "a")).
		Step(ordo.Task("pong", "b").After("ping")).
		Step(ordo.Task("ping2", "a").After("pong")).
		Step(ordo.Task("pong2", "b").After("ping2")).
		MustBuild()
	noop := func(context.Context, *ordo.StepRequest) (ordo.Result, error) { return ordo.Result{}, nil }
	nodeA := newNode(t, schema, "a", ordo.Config{PollInterval: 10 * time.Second})
	nodeB := newNode(t, schema, "b", ordo.Config{PollInterval: 10 * time.Second})
	_, err := nodeA.Deploy(ctx, def)
	require.NoError(t, err)
	nodeA.Handle("a", noop)
	nodeB.Handle("b", noop)

	start := time.Now()
	id, err := nodeA.Start(ctx, "pingpong", nil)
	require.NoError(t, err)
	// Four hand-overs between the nodes; polling alone would take 10 s or
	// more for the first one.
	waitStatus(t, nodeA.Store(), id, ordo.StatusCompleted, 5*time.Second)
	t.Logf("four hand-overs in %s", time.Since(start))
}

// TestConcurrencyStress: 8 goroutines on each of 2 nodes race resubmits
// and cancels against the step completions of both nodes, on the same 100
// instances. Every journal stays gapless, with no event written twice.
func TestConcurrencyStress(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	ctx := t.Context()

	var failures atomic.Int64
	flaky := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		if rand.IntN(4) == 0 {
			failures.Add(1)
			return ordo.Result{}, ordo.NonRetryable(errors.New("flaky"))
		}
		return ordo.Result{Output: req.Step}, nil
	}
	def := ordo.NewWorkflow("stress").
		OnFailure(ordo.FailureReview).
		Step(ordo.Task("a", "flaky")).
		Step(ordo.Task("b", "flaky").After("a")).
		Step(ordo.Task("c", "flaky").After("a")).
		Step(ordo.Task("d", "flaky").After("b", "c")).
		MustBuild()
	var nodes []*ordo.Engine
	for n := range 2 {
		// Few workers: tasks beyond them are left in the store, where both
		// nodes claim them.
		eng := newNode(t, schema, fmt.Sprintf("node-%d", n), ordo.Config{Workers: 2, PollInterval: 20 * time.Millisecond})
		_, err := eng.Register(ctx, def, ordo.Handlers{"flaky": flaky})
		require.NoError(t, err)
		nodes = append(nodes, eng)
	}
	const instances = 100
	ids := make([]string, instances)
	for i := range ids {
		id, err := nodes[i%2].Start(ctx, "stress", map[string]int{"i": i})
		require.NoError(t, err)
		ids[i] = id
	}

	runCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var (
		wg                 sync.WaitGroup
		resubmits, cancels atomic.Int64
		done               atomic.Bool
		unexpected         = make(chan error, 16)
	)
	for _, eng := range nodes {
		for range 8 {
			wg.Go(func() {
				for !done.Load() && runCtx.Err() == nil {
					id := ids[rand.IntN(instances)]
					inst, err := eng.Get(runCtx, id)
					if err != nil {
						if runCtx.Err() == nil {
							unexpected <- err
						}
						return
					}
					switch {
					case inst.Status == ordo.StatusReview && rand.IntN(2) == 0:
						err = eng.Resubmit(runCtx, id, nil)
						if err == nil {
							resubmits.Add(1)
						}
					case !inst.Status.Terminal() && rand.IntN(40) == 0:
						err = eng.Cancel(runCtx, id, "stress")
						if err == nil {
							cancels.Add(1)
						}
					default:
						time.Sleep(time.Millisecond)
					}
					// Losing a race to the other goroutines (the instance
					// moved on) is expected; anything else is not.
					if err != nil && !errors.Is(err, ordo.ErrInvalid) && runCtx.Err() == nil {
						unexpected <- err
						return
					}
				}
			})
		}
	}
	// The racers run until every instance has ended.
	store := nodes[0].Store()
	for {
		ended := 0
		for _, id := range ids {
			inst, err := store.GetInstance(ctx, id)
			require.NoError(t, err)
			if inst.Status.Terminal() {
				ended++
			}
		}
		if ended == instances || runCtx.Err() != nil {
			break
		}
		select {
		case err := <-unexpected:
			t.Fatalf("racer: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	done.Store(true)
	wg.Wait()
	close(unexpected)
	for err := range unexpected {
		t.Fatalf("racer: %v", err)
	}
	require.NoError(t, runCtx.Err(), "not every instance ended")
	t.Logf("%d step failures, %d resubmits, %d cancels", failures.Load(), resubmits.Load(), cancels.Load())
	require.Positive(t, resubmits.Load())
	require.Positive(t, cancels.Load())

	var conflicts int64
	for _, eng := range nodes {
		conflicts += eng.Stats().Conflicts
	}
	t.Logf("%d optimistic-concurrency conflicts", conflicts)
	for _, id := range ids {
		checkJournal(t, store, id)
	}
}

// checkJournal checks the journal of an ended instance: sequence numbers
// run 1, 2, 3... up to the read model's seq; between two resubmits no step
// event is written twice for the same attempt; the instance ends once and
// nothing follows its end.
func checkJournal(t *testing.T, s ordostore.Store, id string) {
	t.Helper()
	inst, err := s.GetInstance(t.Context(), id)
	require.NoError(t, err)
	events, err := s.ListEvents(t.Context(), &ordostore.ListEventsParams{InstanceID: id})
	require.NoError(t, err)
	require.Len(t, events, int(inst.Seq), "instance %s: journal length and read model seq differ", id)
	seen := map[string]bool{}
	ends := 0
	for i, ev := range events {
		require.Equal(t, int64(i+1), ev.Seq, "instance %s: gap in the journal", id)
		require.Zero(t, ends, "instance %s: event %d (%s) after the end", id, ev.Seq, ev.Type)
		switch ev.Type {
		case "workflow.resubmitted":
			clear(seen)
		case "workflow.completed", "workflow.cancelled":
			ends++
		case "step.scheduled", "step.completed", "step.failed":
			key := fmt.Sprintf("%s/%s/%d", ev.Type, ev.StepID, ev.Attempt)
			require.False(t, seen[key], "instance %s: %s written twice (seq %d)", id, key, ev.Seq)
			seen[key] = true
		}
	}
	require.Equal(t, 1, ends, "instance %s ends %d times", id, ends)
}

// TestEffectsRole: side effects wait for a node with the effects role, and
// only that node performs them.
func TestEffectsRole(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	ctx := t.Context()

	var mu sync.Mutex
	performedOn := map[string]int{}
	effect := func(node string) ordo.EffectFunc {
		return func(context.Context, *ordo.EffectRequest) error {
			mu.Lock()
			performedOn[node]++
			mu.Unlock()
			return nil
		}
	}
	def := ordo.NewWorkflow("fx").Step(ordo.Task("a", "work")).MustBuild()
	work := func(context.Context, *ordo.StepRequest) (ordo.Result, error) {
		return ordo.Result{SideEffects: []ordo.SideEffect{{Type: "note", Payload: map[string]string{"hello": "world"}}}}, nil
	}
	exec := newNode(t, schema, "exec", ordo.Config{Roles: []string{ordo.RoleAPI, ordo.RoleExecutor}, PollInterval: 20 * time.Millisecond})
	exec.HandleEffect("note", effect("exec"))
	_, err := exec.Register(ctx, def, ordo.Handlers{"work": work})
	require.NoError(t, err)
	id, err := exec.Start(ctx, "fx", nil)
	require.NoError(t, err)
	// The step runs; its effect waits in the store, and the instance
	// with it (an instance ends once its effects are done).
	require.Eventually(t, func() bool {
		events, err := exec.Store().ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: id})
		require.NoError(t, err)
		return slices.ContainsFunc(events, func(ev *ordostore.Event) bool { return ev.Type == "step.completed" })
	}, 30*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	left, err := exec.Store().CountTasks(ctx, &ordostore.CountTasksParams{InstanceID: id})
	require.NoError(t, err)
	require.Equal(t, 1, left)
	inst, err := exec.Store().GetInstance(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusRunning, inst.Status)

	fx := newNode(t, schema, "fx", ordo.Config{Roles: []string{ordo.RoleEffects}, PollInterval: 20 * time.Millisecond})
	fx.HandleEffect("note", effect("fx"))
	waitStatus(t, exec.Store(), id, ordo.StatusCompleted, 30*time.Second)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, map[string]int{"fx": 1}, performedOn)
}
