package ordo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordosqlite"
	"github.com/ordoflow/ordo/ordostore"
)

// The crash test runs the engine in a child process (this test binary,
// re-executed) and kills it with SIGKILL at random moments.
const (
	crashChildEnv  = "ORDO_CRASH_CHILD_DB"
	crashInstances = 500
)

func crashDefinition() *ordo.Definition {
	return ordo.NewWorkflow("crash-order").
		IdempotencyKey("input.orderId").
		Retry(ordo.RetryPolicy{MaxAttempts: 10, InitialInterval: 5 * time.Millisecond, MaxInterval: 20 * time.Millisecond}).
		Step(ordo.Task("payment", "work")).
		Step(ordo.Task("reserve", "work").After("payment")).
		Step(ordo.Task("label", "flaky").After("payment")).
		Step(ordo.Task("ship", "work").After("reserve", "label")).
		Step(ordo.Task("notify", "fx").After("ship")).
		MustBuild()
}

func crashHandlers() ordo.Handlers {
	work := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		return ordo.Result{Output: map[string]string{"step": req.Step}}, nil
	}
	return ordo.Handlers{
		"work": work,
		"flaky": func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			if req.Attempt == 1 && rand.IntN(4) == 0 {
				return ordo.Result{}, fmt.Errorf("flaky")
			}
			return work(ctx, req)
		},
		"fx": func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			return ordo.Result{SideEffects: []ordo.SideEffect{ordo.LogEffect("notified", nil)}}, nil
		},
	}
}

// TestCrashChild is the child process; it does nothing in a normal run.
// It starts all instances (idempotently: a restarted child starts none
// twice), waits for every one to end, and exits 0.
func TestCrashChild(t *testing.T) {
	db := os.Getenv(crashChildEnv)
	if db == "" {
		t.Skip("runs only as the child process of TestCrash_KillNine")
	}
	ctx := context.Background()
	eng, err := ordo.Open(ctx, ordo.SQLite(db), &ordo.Config{PollInterval: 50 * time.Millisecond, Workers: 8})
	if err != nil {
		childExit(10, "open", err)
	}
	if _, err := eng.Register(ctx, crashDefinition(), crashHandlers()); err != nil {
		childExit(11, "register", err)
	}
	runChildInstances(eng, "crash-order", crashInstances, 16, func(i int) any {
		return map[string]any{"orderId": "o-" + strconv.Itoa(i)}
	})
}

func TestCrash_KillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	t.Parallel()
	db := filepath.Join(t.TempDir(), "crash.db")
	child := func() *exec.Cmd { return childProcess("TestCrashChild", crashChildEnv, db) }

	// Five times: start a child, let it run a random while, kill -9 it.
	midRun := 0
	for round := range 5 {
		cmd := child()
		require.NoError(t, cmd.Start())
		time.Sleep(time.Duration(100+rand.IntN(600)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		if err := cmd.Wait(); err == nil {
			t.Logf("round %d: the child finished before it was killed", round)
			continue
		}
		store, err := ordosqlite.Open(t.Context(), db, nil)
		require.NoError(t, err)
		insts, err := store.ListInstances(t.Context(), &ordostore.ListInstancesParams{Limit: 10 * crashInstances})
		require.NoError(t, err)
		done := 0
		for _, inst := range insts {
			if inst.Status == ordo.StatusCompleted {
				done++
			}
		}
		require.NoError(t, store.Close())
		t.Logf("round %d: killed with %d instances started, %d completed", round, len(insts), done)
		if done < crashInstances {
			midRun++
		}
	}
	require.Positive(t, midRun, "at least one kill hit a running workload")
	// Then let one run to the end.
	runToEnd(t, child(), "runs every instance to its end")

	// Check the journal with the engine stopped.
	ctx := t.Context()
	eng, err := ordo.Open(ctx, ordo.SQLite(db), nil)
	require.NoError(t, err)
	defer eng.Close(ctx)
	store := eng.Store()
	insts, err := store.ListInstances(ctx, &ordostore.ListInstancesParams{Limit: 10 * crashInstances})
	require.NoError(t, err)
	require.Len(t, insts, crashInstances, "one instance per order: restarts started none twice")
	for _, inst := range insts {
		require.Equal(t, ordo.StatusCompleted, inst.Status, "instance %s", inst.ID)
		events, err := store.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: inst.ID})
		require.NoError(t, err)
		completed := map[string]int{}
		var wfCompleted int
		for i, e := range events {
			require.Equal(t, int64(i+1), e.Seq, "gapless journal")
			switch e.Type {
			case "step.completed":
				completed[e.StepID]++
			case "workflow.completed":
				wfCompleted++
			}
		}
		require.Equal(t, 1, wfCompleted, "instance %s completed exactly once", inst.ID)
		require.Equal(t, map[string]int{"payment": 1, "reserve": 1, "label": 1, "ship": 1, "notify": 1}, completed,
			"instance %s: every step's completion journaled once", inst.ID)
		var st struct {
			PendingEffects int `json:"pendingEffects"`
		}
		require.NoError(t, json.Unmarshal(inst.State, &st))
		require.Zero(t, st.PendingEffects, "every side effect has an outcome")
	}
	left, err := store.CountTasks(ctx, &ordostore.CountTasksParams{})
	require.NoError(t, err)
	require.Zero(t, left, "no task left behind")
}
