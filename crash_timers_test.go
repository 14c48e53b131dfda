package ordo_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotest"
)

// The timer crash test kills the engine while it fires many timers that
// are due at once. The instances are started beforehand on a fake clock two
// hours in the past, each with a one-hour timer: to the child processes,
// which run on the system clock, every timer is already due, and they fire
// them from the moment they start.
const (
	crashTimerChildEnv = "ORDO_CRASH_TIMER_CHILD_DB"
)

func crashTimerDefinition() *ordo.Definition {
	return ordo.NewWorkflow("crash-timer").
		Step(ordo.Timer("wait", time.Hour)).
		Step(ordo.Task("after", "work").After("wait")).
		MustBuild()
}

func crashTimerHandlers() ordo.Handlers {
	return ordo.Handlers{"work": func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		return ordo.Result{Output: map[string]string{"step": req.Step}}, nil
	}}
}

// TestCrashTimerChild is the child process; it does nothing in a normal
// run. It fires the due timers, waits until every instance has ended and
// exits 0.
func TestCrashTimerChild(t *testing.T) {
	db := os.Getenv(crashTimerChildEnv)
	if db == "" {
		t.Skip("runs only as the child process of TestCrash_KillNineWhileFiringTimers")
	}
	ctx := context.Background()
	eng, err := ordo.Open(ctx, ordo.SQLite(db), &ordo.Config{PollInterval: 50 * time.Millisecond})
	if err != nil {
		childExit(10, "open", err)
	}
	if _, err := eng.Register(ctx, crashTimerDefinition(), crashTimerHandlers()); err != nil {
		childExit(11, "register", err)
	}
	// Tell the parent how many transitions are committed, as they are.
	go func() {
		last := int64(-1)
		for {
			if n := eng.Stats().Transitions; n != last {
				fmt.Println("COMMITTED", n)
				last = n
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for {
		left, err := eng.Store().CountTasks(ctx, &ordostore.CountTasksParams{})
		if err != nil {
			childExit(12, "count tasks", err)
		}
		if left == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := eng.Close(ctx); err != nil {
		childExit(14, "close", err)
	}
	os.Exit(0)
}

// TestCrash_KillNineWhileFiringTimers: thousands of timers are due at
// once; a child process that fires them is killed with SIGKILL at a random
// moment while it fires (after a random number of commits), five times,
// then one runs to the end. Each timer must have fired
// exactly once: one step.completed per timer and per follow-up step, every
// instance completed once, no task left.
func TestCrash_KillNineWhileFiringTimers(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	t.Parallel()
	n := 5000
	if raceEnabled {
		n = 1000
	}
	ctx := t.Context()
	db := filepath.Join(t.TempDir(), "crash-timers.db")

	// Start the instances two hours ago on a fake clock.
	clock := ordotest.NewFakeClock(time.Now().Add(-2 * time.Hour).UTC())
	eng, err := ordo.Open(ctx, ordo.SQLite(db), &ordo.Config{Clock: clock})
	require.NoError(t, err)
	_, err = eng.Register(ctx, crashTimerDefinition(), crashTimerHandlers())
	require.NoError(t, err)
	for i := range n {
		_, err := eng.Start(ctx, "crash-timer", map[string]int{"n": i})
		require.NoError(t, err)
	}
	require.NoError(t, eng.Close(ctx))

	child := func() *exec.Cmd { return childProcess("TestCrashTimerChild", crashTimerChildEnv, db) }
	// fired counts the timers that fired and the instances that completed.
	fired := func() (timers, done int) {
		eng, err := ordo.Open(ctx, ordo.SQLite(db), &ordo.Config{Clock: clock}) // a fake clock: it fires nothing
		require.NoError(t, err)
		defer eng.Close(ctx)
		insts, err := eng.List(ctx, &ordo.ListParams{Limit: 2 * n})
		require.NoError(t, err)
		for _, inst := range insts {
			if inst.Step("wait").Status == ordo.StepCompleted {
				timers++
			}
			if inst.Status == ordo.StatusCompleted {
				done++
			}
		}
		return timers, done
	}
	midRun, before := 0, 0
	for round := range 5 {
		cmd := child()
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		// Kill it once it has committed a random number of transitions
		// (a timer firing is one, its follow-up step another).
		target := 1 + rand.IntN(n/4)
		reached := make(chan struct{})
		go func() {
			sc := bufio.NewScanner(out)
			closed := false
			for sc.Scan() {
				rest, ok := strings.CutPrefix(sc.Text(), "COMMITTED ")
				if c, err := strconv.Atoi(rest); ok && err == nil && c >= target && !closed {
					close(reached)
					closed = true
				}
			}
		}()
		select {
		case <-reached:
		case <-time.After(time.Minute):
			t.Fatal("the child did not fire in a minute")
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		if err := cmd.Wait(); err == nil {
			t.Logf("round %d: the child finished before it was killed", round)
			continue
		}
		timers, done := fired()
		t.Logf("round %d: killed with %d of %d timers fired, %d instances completed", round, timers, n, done)
		if timers > before && timers < n {
			midRun++ // killed while it fired
		}
		before = timers
	}
	require.Positive(t, midRun, "at least one kill hit the firing of the timers")
	runToEnd(t, child(), "fires every timer")

	eng, err = ordo.Open(ctx, ordo.SQLite(db), &ordo.Config{Clock: clock})
	require.NoError(t, err)
	defer eng.Close(ctx)
	store := eng.Store()
	insts, err := store.ListInstances(ctx, &ordostore.ListInstancesParams{Limit: 2 * n})
	require.NoError(t, err)
	require.Len(t, insts, n)
	for _, inst := range insts {
		require.Equal(t, ordo.StatusCompleted, inst.Status, "instance %s", inst.ID)
		events, err := store.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: inst.ID})
		require.NoError(t, err)
		completed := map[string]int{}
		wfCompleted := 0
		for i, e := range events {
			require.Equal(t, int64(i+1), e.Seq, "gapless journal")
			switch e.Type {
			case "step.completed":
				completed[e.StepID]++
				if e.StepID == "wait" {
					require.False(t, e.CreatedAt.Before(inst.CreatedAt.Add(time.Hour)), "instance %s: timer fired before it was due", inst.ID)
				}
			case "workflow.completed":
				wfCompleted++
			}
		}
		require.Equal(t, map[string]int{"wait": 1, "after": 1}, completed, "instance %s: the timer fired once, its follow-up ran once", inst.ID)
		require.Equal(t, 1, wfCompleted, "instance %s completed once", inst.ID)
	}
	left, err := store.CountTasks(ctx, &ordostore.CountTasksParams{})
	require.NoError(t, err)
	require.Zero(t, left, "no task left behind")
}
