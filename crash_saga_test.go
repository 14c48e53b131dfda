package ordo_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordostore"
)

// The saga crash test kills a child process (this test binary, re-executed)
// while it runs sagas, whose steps include a child workflow, and checks
// after the last restart that every compensation was journaled once, in
// reverse order of completion.
const (
	sagaChildEnv  = "ORDO_SAGA_CHILD_DB"
	sagaInstances = 200
)

const sagaDefinitions = `
workflow: saga-trip
idempotencyKey: input.trip
onFailure: compensate
steps:
  - {id: flight, task: {handler: work}, compensate: {task: {handler: undo}}}
  - {id: hotel, after: [flight], workflow: {name: saga-hotel}, compensate: {task: {handler: undo}}}
  - {id: car, after: [hotel], task: {handler: work}, compensate: {task: {handler: undo}}}
  - {id: pay, after: [car], task: {handler: decline}}
---
workflow: saga-hotel
steps:
  - {id: book, task: {handler: work}}
  - {id: confirm, after: [book], task: {handler: work}}
`

func sagaDefs(t testing.TB) []*ordo.Definition {
	var defs []*ordo.Definition
	for _, src := range splitYAML(sagaDefinitions) {
		def, err := ordo.ParseDefinition([]byte(src), "saga.yaml")
		if err != nil {
			t.Fatal(err)
		}
		defs = append(defs, def)
	}
	return defs
}

func splitYAML(s string) []string {
	var out []string
	start := 0
	for i := 0; i+4 <= len(s); i++ {
		if s[i:i+4] == "\n---" {
			out = append(out, s[start:i+1])
			start = i + 4
		}
	}
	return append(out, s[start:])
}

// TestSagaCrashChild is the child process; it does nothing in a normal run.
func TestSagaCrashChild(t *testing.T) {
	db := os.Getenv(sagaChildEnv)
	if db == "" {
		t.Skip("runs only as the child process of TestCrash_KillNineDuringCompensation")
	}
	ctx := context.Background()
	eng, err := ordo.Open(ctx, ordo.SQLite(db), &ordo.Config{PollInterval: 50 * time.Millisecond, Workers: 8})
	if err != nil {
		childExit(10, "open", err)
	}
	work := func(context.Context, *ordo.StepRequest) (ordo.Result, error) {
		time.Sleep(time.Duration(rand.IntN(4000)) * time.Microsecond)
		return ordo.Result{}, nil
	}
	var marked sync.Once
	handlers := ordo.Handlers{
		"work": work,
		// The first compensation tells the parent that sagas compensate.
		"undo": func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			marked.Do(func() { _ = os.WriteFile(db+".compensating", nil, 0o600) })
			return work(ctx, req)
		},
		"decline": func(context.Context, *ordo.StepRequest) (ordo.Result, error) {
			return ordo.Result{}, ordo.NonRetryable(ordo.WithCode("declined", fmt.Errorf("declined")))
		},
	}
	for _, def := range sagaDefs(t) {
		if _, err := eng.Register(ctx, def, handlers); err != nil {
			childExit(11, "register", err)
		}
	}
	runChildInstances(eng, "saga-trip", sagaInstances, 8, func(i int) any {
		return map[string]any{"trip": "t-" + strconv.Itoa(i)}
	})
}

func TestCrash_KillNineDuringCompensation(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	t.Parallel()
	db := filepath.Join(t.TempDir(), "saga.db")
	child := func() *exec.Cmd { return childProcess("TestSagaCrashChild", sagaChildEnv, db) }
	compensating := 0
	for round := range 5 {
		marker := db + ".compensating"
		_ = os.Remove(marker)
		cmd := child()
		require.NoError(t, cmd.Start())
		// Kill it a random while after its first compensation ran.
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(marker); err == nil {
				break
			}
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		if err := cmd.Wait(); err == nil {
			t.Logf("round %d: the child finished before it was killed", round)
			continue
		}
		eng, err := ordo.Open(t.Context(), ordo.SQLite(db), &ordo.Config{Workers: 1})
		require.NoError(t, err)
		require.NoError(t, eng.Stop(t.Context()))
		insts, err := eng.Store().ListInstances(t.Context(), &ordostore.ListInstancesParams{Workflow: "saga-trip", Limit: 10 * sagaInstances})
		require.NoError(t, err)
		mid, done := 0, 0
		for _, inst := range insts {
			switch inst.Status {
			case ordo.StatusCompensated:
				done++
			case ordo.StatusRunning, ordo.StatusWaiting:
				if strings.Contains(string(inst.State), `"compensating":true`) {
					mid++
				}
			}
		}
		require.NoError(t, eng.Close(t.Context()))
		t.Logf("round %d: killed with %d sagas started, %d compensating, %d compensated", round, len(insts), mid, done)
		compensating += mid
	}
	require.Positive(t, compensating, "at least one kill hit a saga while it compensated")

	runToEnd(t, child(), "runs every saga to its end")

	ctx := t.Context()
	eng, err := ordo.Open(ctx, ordo.SQLite(db), nil)
	require.NoError(t, err)
	defer eng.Close(ctx)
	store := eng.Store()
	insts, err := store.ListInstances(ctx, &ordostore.ListInstancesParams{Workflow: "saga-trip", Limit: 10 * sagaInstances})
	require.NoError(t, err)
	require.Len(t, insts, sagaInstances, "one saga per trip: restarts started none twice")
	for _, inst := range insts {
		require.Equal(t, ordo.StatusCompensated, inst.Status, "instance %s", inst.ID)
		events, err := store.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: inst.ID})
		require.NoError(t, err)
		var compensations []string
		children := 0
		for i, e := range events {
			require.Equal(t, int64(i+1), e.Seq, "gapless journal")
			switch {
			case e.Type == "step.completed" && strings.HasSuffix(e.StepID, ".compensate"):
				compensations = append(compensations, e.StepID)
			case e.Type == "step.started" && e.StepID == "hotel":
				children++
			}
		}
		require.Equal(t, []string{"car.compensate", "hotel.compensate", "flight.compensate"}, compensations,
			"instance %s: each compensation journaled once, in reverse order", inst.ID)
		require.Equal(t, 1, children, "instance %s: one child workflow started", inst.ID)
	}
	hotels, err := store.ListInstances(ctx, &ordostore.ListInstancesParams{Workflow: "saga-hotel", Limit: 10 * sagaInstances})
	require.NoError(t, err)
	require.Len(t, hotels, sagaInstances, "each child workflow started once")
	left, err := store.CountTasks(ctx, &ordostore.CountTasksParams{})
	require.NoError(t, err)
	require.Zero(t, left, "no task left behind")
}
