package ordo_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotest"
)

const week = 7 * 24 * time.Hour

func weekTimerDefinition() *ordo.Definition {
	return ordo.NewWorkflow("week").Step(ordo.Timer("wait", week)).MustBuild()
}

// TestTimers_WaitingHoldsNoGoroutine starts 1,000 instances (300 under the
// race detector) that wait on a 7-day timer and checks that the process has
// no more goroutines than before: a wait lives in the store, not in a
// goroutine or a Go timer.
// Then the fake clock reaches the timers and every instance completes.
func TestTimers_WaitingHoldsNoGoroutine(t *testing.T) {
	tt := ordotest.New(t, nil) // not parallel: it counts the process's goroutines
	ctx := t.Context()
	_, err := tt.Engine.Register(ctx, weekTimerDefinition(), nil)
	require.NoError(t, err)
	tt.Start("week", nil) // warms the store's connections and the engine's caches
	settle := func() int {
		// Goroutines of finished calls (database/sql's connection openers,
		// a commit's waiters) may take a moment to exit.
		n := runtime.NumGoroutine()
		for range 100 {
			time.Sleep(5 * time.Millisecond)
			n = min(n, runtime.NumGoroutine())
		}
		return n
	}
	before := settle()
	n := 1000
	if raceEnabled {
		n = 300
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = tt.Start("week", nil)
	}
	for _, id := range []string{ids[0], ids[n/2], ids[n-1]} {
		tt.RequireStatus(id, ordo.StatusWaiting)
		tt.RequireStepStatus(id, "wait", ordo.StepWaiting)
	}
	waiting := settle()
	t.Logf("goroutines: %d before, %d with %d more instances waiting on 7-day timers", before, waiting, n)
	require.LessOrEqual(t, waiting, before+5, "a waiting instance holds no goroutine")

	start := tt.Clock.Now()
	tt.Clock.Set(start.Add(week - time.Second))
	tt.RunUntilIdle() // moves the clock to the timers and fires them
	require.Equal(t, start.Add(week), tt.Clock.Now())
	for _, id := range ids {
		tt.RequireStatus(id, ordo.StatusCompleted)
	}
}

// The 100,000-timer test runs the engine in a child process (this test
// binary, re-executed, as in crash_test.go) so that its RSS is its own.
const (
	timerChildEnv   = "ORDO_TIMER_CHILD_DB"
	timerChildCount = "ORDO_TIMER_CHILD_INSTANCES"
	timerMemoryMB   = 200
)

// timerChildReport is what the child prints on its last line.
type timerChildReport struct {
	Instances        int     `json:"instances"`
	RSSZeroMB        float64 `json:"rssZeroMB"`
	RSSWaitingMB     float64 `json:"rssWaitingMB"`
	HWMWaitingMB     float64 `json:"hwmWaitingMB"`
	GoroutinesZero   int     `json:"goroutinesZero"`
	GoroutinesWait   int     `json:"goroutinesWaiting"`
	StartSeconds     float64 `json:"startSeconds"`
	FireSeconds      float64 `json:"fireSeconds"`
	Completed        int     `json:"completed"`
	TimerCompletions int     `json:"timerCompletions"`
	WorkflowEnds     int     `json:"workflowEnds"`
	TasksLeft        int     `json:"tasksLeft"`
	Problem          string  `json:"problem,omitempty"`
}

// procStatusMB reads a field of /proc/self/status (VmRSS, VmHWM) in MB.
func procStatusMB(t testing.TB, field string) float64 {
	data, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			require.NoError(t, err)
			return kb / 1024
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// TestTimerChild is the child process of TestTimers_100kWaiting; it does
// nothing in a normal run. On a fake clock it measures its RSS with no
// instance, starts the instances (each waits on a 7-day timer), measures
// again, moves the clock a week on, fires every timer, checks each
// instance's journal and prints a report.
func TestTimerChild(t *testing.T) {
	db := os.Getenv(timerChildEnv)
	if db == "" {
		t.Skip("runs only as the child process of TestTimers_100kWaiting")
	}
	n, err := strconv.Atoi(os.Getenv(timerChildCount))
	require.NoError(t, err)
	ctx := context.Background()
	tt := ordotest.New(t, &ordotest.Options{DBPath: db})
	_, err = tt.Engine.Register(ctx, weekTimerDefinition(), nil)
	require.NoError(t, err)
	rep := timerChildReport{Instances: n}
	runtime.GC()
	rep.RSSZeroMB = procStatusMB(t, "VmRSS")
	rep.GoroutinesZero = runtime.NumGoroutine()

	began := time.Now()
	ids := make([]string, n)
	var wg sync.WaitGroup
	const starters = 64
	for g := range starters {
		wg.Go(func() {
			for i := g; i < n; i += starters {
				ids[i] = tt.Start("week", nil)
			}
		})
	}
	wg.Wait()
	rep.StartSeconds = time.Since(began).Seconds()
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	rep.RSSWaitingMB = procStatusMB(t, "VmRSS")
	rep.HWMWaitingMB = procStatusMB(t, "VmHWM")
	rep.GoroutinesWait = runtime.NumGoroutine()

	began = time.Now()
	tt.Clock.Advance(week - time.Second) // not yet due: nothing fires
	if left, err := tt.Engine.Store().CountTasks(ctx, &ordostore.CountTasksParams{}); err != nil || left != n {
		rep.Problem = fmt.Sprintf("a second before the timers are due, %d tasks are left (error %v), want %d", left, err, n)
	}
	tt.RunUntilIdle()
	rep.FireSeconds = time.Since(began).Seconds()

	store := tt.Engine.Store()
	for _, id := range ids {
		inst, err := store.GetInstance(ctx, id)
		require.NoError(t, err)
		if inst.Status == ordo.StatusCompleted {
			rep.Completed++
		}
		events, err := store.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: id})
		require.NoError(t, err)
		for _, e := range events {
			switch {
			case e.Type == "step.completed" && e.StepID == "wait":
				rep.TimerCompletions++
				if !e.CreatedAt.Equal(inst.CreatedAt.Add(week)) && rep.Problem == "" {
					rep.Problem = fmt.Sprintf("instance %s: timer fired at %s, want %s", id, e.CreatedAt, inst.CreatedAt.Add(week))
				}
			case e.Type == "workflow.completed":
				rep.WorkflowEnds++
			}
		}
	}
	rep.TasksLeft, err = store.CountTasks(ctx, &ordostore.CountTasksParams{})
	require.NoError(t, err)
	out, err := json.Marshal(rep)
	require.NoError(t, err)
	fmt.Println("\nREPORT " + string(out))
}

// TestTimers_100kWaiting is the must-hold test of durable timers: 100,000
// instances waiting on a 7-day timer hold no goroutine and keep the
// process's RSS less than 200 MB above what it is with none, and each
// fires exactly once (the instance completes once, one step.completed for
// the timer) when the fake clock reaches them.
//
// The engine runs in a child process so that the RSS measured (VmRSS from
// /proc/self/status, after a GC, with no instance and with all of them
// waiting) is the engine's alone. Starting 100,000 instances on SQLite
// takes 15-40 s on two busy cores; under the race detector, which makes it
// five to ten times slower and multiplies memory by its shadow state, the
// child runs 2,000 instances and the same RSS bound is checked (a weaker
// check, kept for the goroutine and firing assertions). `go test ./...` without -race
// (or `make test/timers`) runs the full 100,000. -short skips the test.
func TestTimers_100kWaiting(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 100,000 instances in a child process; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads the child's RSS from /proc")
	}
	t.Parallel()
	n := 100_000
	if raceEnabled {
		n = 2_000
	}
	db := filepath.Join(t.TempDir(), "timers.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestTimerChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), timerChildEnv+"="+db, timerChildCount+"="+strconv.Itoa(n))
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run(), "child output:\n%s", stdout.String())

	var rep timerChildReport
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "REPORT "); ok {
			require.NoError(t, json.Unmarshal([]byte(rest), &rep))
		}
	}
	require.Equal(t, n, rep.Instances, "the child reported; its output:\n%s", stdout.String())
	t.Logf("%d instances: started in %.1fs, fired in %.1fs; RSS %.1f MB with none, %.1f MB with all waiting (peak %.1f MB); goroutines %d -> %d",
		n, rep.StartSeconds, rep.FireSeconds, rep.RSSZeroMB, rep.RSSWaitingMB, rep.HWMWaitingMB, rep.GoroutinesZero, rep.GoroutinesWait)
	require.Empty(t, rep.Problem)
	require.Less(t, rep.RSSWaitingMB-rep.RSSZeroMB, float64(timerMemoryMB), "RSS with every instance waiting, over RSS with none")
	require.Less(t, rep.HWMWaitingMB-rep.RSSZeroMB, float64(timerMemoryMB), "peak RSS while starting them, over RSS with none")
	require.LessOrEqual(t, rep.GoroutinesWait, rep.GoroutinesZero+10, "waiting instances hold no goroutine")
	require.Equal(t, n, rep.Completed, "every instance completed")
	require.Equal(t, n, rep.TimerCompletions, "one step.completed per timer")
	require.Equal(t, n, rep.WorkflowEnds, "one workflow.completed per instance")
	require.Zero(t, rep.TasksLeft, "no task left")
}

// TestTimers_UntilAndISODuration: a timer built with TimerUntil waits until
// the instant its CEL expression gives, and one written in YAML with an
// ISO 8601 duration (P7D) waits seven days; each fires once, at its time.
func TestTimers_UntilAndISODuration(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	ctx := t.Context()
	start := tt.Clock.Now()
	until := ordo.NewWorkflow("until").Step(ordo.TimerUntil("wait", "timestamp(input.at)")).MustBuild()
	_, err := tt.Engine.Register(ctx, until, nil)
	require.NoError(t, err)
	iso, err := ordo.ParseDefinition([]byte("workflow: iso\nsteps:\n  - id: wait\n    timer: {duration: P7D}\n"), "iso.yaml")
	require.NoError(t, err)
	_, err = tt.Engine.Register(ctx, iso, nil)
	require.NoError(t, err)

	at := start.Add(36 * time.Hour)
	u := tt.Start("until", map[string]string{"at": at.Format(time.RFC3339)})
	w := tt.Start("iso", nil)
	tt.RequireStepStatus(u, "wait", ordo.StepWaiting)
	tt.RequireStepStatus(w, "wait", ordo.StepWaiting)
	tt.RunUntilIdle()
	for id, due := range map[string]time.Time{u: at, w: start.Add(week)} {
		tt.RequireStatus(id, ordo.StatusCompleted)
		events, err := tt.Engine.Journal(ctx, id)
		require.NoError(t, err)
		fired := 0
		for _, e := range events {
			if e.Type == "step.completed" && e.Step == "wait" {
				fired++
				require.True(t, e.Time.Equal(due), "timer of %s fired at %s, want %s", id, e.Time, due)
			}
		}
		require.Equal(t, 1, fired)
	}
}

// TestTimers_FireOnceFromConcurrentPasses fires more timers than one page
// of due timers holds, all due at one instant, from several callers of
// RunDue at once while the engine's scheduler fires them too. Every timer
// must be fired once: one step.completed per instance, and no firing that
// the store's claim check had to turn away as a duplicate.
func TestTimers_FireOnceFromConcurrentPasses(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	ctx := t.Context()
	_, err := tt.Engine.Register(ctx, weekTimerDefinition(), nil)
	require.NoError(t, err)
	n := 5000
	if raceEnabled {
		n = 2500
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := g; i < n; i += 8 {
				ids[i] = tt.Start("week", nil)
			}
		})
	}
	wg.Wait()

	tt.Clock.Advance(week)
	for range 4 {
		wg.Go(tt.RunDue)
	}
	wg.Wait()
	tt.RunDue()

	for _, id := range ids {
		events, err := tt.Engine.Store().ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: id})
		require.NoError(t, err)
		fired := 0
		for _, ev := range events {
			if ev.Type == "step.completed" && ev.StepID == "wait" {
				fired++
			}
		}
		require.Equal(t, 1, fired, "instance %s: timer fired %d times", id, fired)
		tt.RequireStatus(id, ordo.StatusCompleted)
	}
	require.Zero(t, tt.Engine.Stats().Duplicates, "a timer was fired twice and turned away by the claim check")
	left, err := tt.Engine.Store().CountTasks(ctx, &ordostore.CountTasksParams{})
	require.NoError(t, err)
	require.Zero(t, left)
}

// TestTimers_FailedFiringWaitsForALease: on a SQLite file timers are fired
// without a lease, so a timer whose firing fails (here its instance's
// stored state cannot be decoded) must be kept back as a lease would keep
// it: not fired again at once, in a loop, but once the lease duration has
// passed.
func TestTimers_FailedFiringWaitsForALease(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "ordo.db")
	quiet := &ordo.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), LeaseDuration: time.Minute}
	open := func() (*ordo.Engine, *ordotest.Driver, *ordotest.FakeClock) {
		clock := ordotest.NewFakeClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		cfg := *quiet
		cfg.Clock = clock
		eng, err := ordo.Open(ctx, ordo.SQLite(path), &cfg)
		require.NoError(t, err)
		_, err = eng.Register(ctx, weekTimerDefinition(), nil)
		require.NoError(t, err)
		return eng, ordotest.Drive(eng, clock), clock
	}

	eng, _, _ := open()
	id, err := eng.Start(ctx, "week", nil)
	require.NoError(t, err)
	require.NoError(t, eng.Close(ctx))
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `UPDATE instances SET state = CAST('{"id":' AS BLOB) WHERE id = ?`, id)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	eng, drive, clock := open() // cold: the state is read from the file
	defer func() { require.NoError(t, eng.Close(context.WithoutCancel(ctx))) }()
	// A timer fired again at once keeps RunDue busy: it fails at this
	// deadline rather than hangs.
	runDue := func() {
		t.Helper()
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		require.NoError(t, drive.RunDue(dctx))
	}
	clock.Advance(week)
	runDue()
	require.Equal(t, int64(1), eng.Stats().StepsRun, "the timer was fired")
	for range 3 {
		runDue()
	}
	clock.Advance(30 * time.Second)
	runDue()
	require.Equal(t, int64(1), eng.Stats().StepsRun, "a failed timer is not fired again before its lease would end")
	clock.Advance(30 * time.Second)
	runDue()
	require.Equal(t, int64(2), eng.Stats().StepsRun, "a failed timer is fired again once its lease would have ended")
	left, err := eng.Store().CountTasks(ctx, &ordostore.CountTasksParams{InstanceID: id})
	require.NoError(t, err)
	require.Equal(t, 1, left, "the timer is still due")
}
