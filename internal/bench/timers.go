package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// WorkloadTimers is a workflow whose only step is a timer: every instance
// waits for the same instant, and the run measures how late the timers fire.
const WorkloadTimers = "timers"

// timersLead is how long after the last start is committed the timers are
// due.
const timersLead = 2 * time.Second

func timersDefinition() (*ordo.Definition, error) {
	return ordo.NewWorkflow("bench-timers").Step(ordo.TimerUntil("wait", "timestamp(input.at)")).Build()
}

// runTimers starts opts.Instances instances of the timers workload, all due
// at one instant T (or, with opts.Spread, due at evenly spaced instants
// from T to T+Spread), then measures for each instance its completion time
// − its due time (the instance ends in the transition that journals the
// timer's step.completed, at the time the engine fired it).
//
// T must lie a few seconds after the last start is committed, which is not
// known in advance. So the instances are started by a first engine with T a
// day ahead; that engine is closed, and a second engine is opened on the
// same store with the system clock shifted by a constant offset, so that T
// comes timersLead after the reopening. The second engine waits and fires
// with real timers and real durations; only the clock's origin is moved,
// and it starts cold, as after a restart during a long wait.
func runTimers(ctx context.Context, opts Options) (*Result, error) {
	def, err := timersDefinition()
	if err != nil {
		return nil, err
	}
	open, storeName, db, cleanup, err := benchStore(ctx, opts.DB)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// Phase 1: start every instance, due a day from now.
	due := time.Now().UTC().Add(24 * time.Hour).Truncate(time.Second)
	eng, err := ordo.Open(ctx, open, &ordo.Config{Workers: opts.Workers, Logger: quiet})
	if err != nil {
		return nil, err
	}
	if _, err := eng.Register(ctx, def, nil); err != nil {
		eng.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	// dueOf is the due time of the i-th instance started (from 0).
	dueOf := func(i int) time.Time {
		return due.Add(time.Duration(int64(opts.Spread) * int64(i) / int64(opts.Instances)))
	}
	var (
		dueMu sync.Mutex
		dues  = make(map[string]time.Time, opts.Instances)
	)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, opts.Concurrency)
	created := time.Now()
	for range opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= opts.Instances {
					return
				}
				at := dueOf(i)
				id, err := eng.Start(ctx, def.Name(), json.RawMessage(`{"at":"`+at.Format(time.RFC3339Nano)+`"}`))
				if err != nil {
					errc <- err
					return
				}
				dueMu.Lock()
				dues[id] = at
				dueMu.Unlock()
			}
		}()
	}
	wg.Wait()
	createSeconds := time.Since(created).Seconds()
	close(errc)
	if err := errors.Join(<-errc, eng.Close(context.WithoutCancel(ctx))); err != nil {
		return nil, err
	}

	// Phase 2: reopen with the clock shifted so that T is timersLead away.
	clock := &shiftedClock{off: due.Sub(time.Now().Add(timersLead))}
	eng, err = ordo.Open(ctx, open, &ordo.Config{Workers: opts.Workers, Logger: quiet, Clock: clock})
	if err != nil {
		return nil, err
	}
	defer eng.Close(context.WithoutCancel(ctx))
	if _, err := eng.Register(ctx, def, nil); err != nil {
		return nil, err
	}
	store := eng.Store()
	for {
		left, err := store.CountTasks(ctx, &ordostore.CountTasksParams{})
		if err != nil {
			return nil, err
		}
		if left == 0 {
			break
		}
		if clock.Now().Sub(due) > 10*time.Minute+opts.Spread {
			return nil, fmt.Errorf("%d timers still not fired 10 minutes after they were due", left)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	insts, err := store.ListInstances(ctx, &ordostore.ListInstancesParams{Workflow: def.Name(), Limit: opts.Instances + 1})
	if err != nil {
		return nil, err
	}
	if len(insts) != opts.Instances {
		return nil, fmt.Errorf("%d instances stored, want %d", len(insts), opts.Instances)
	}
	lat := make([]time.Duration, 0, len(insts))
	var lastFired time.Time
	for _, inst := range insts {
		if inst.Status != ordotype.StatusCompleted {
			return nil, fmt.Errorf("instance %s is %s after its timer, want completed", inst.ID, inst.Status)
		}
		at, ok := dues[inst.ID]
		if !ok {
			return nil, fmt.Errorf("instance %s was not started by the run", inst.ID)
		}
		if inst.FinishedAt.Before(at) {
			return nil, fmt.Errorf("instance %s fired at %s, before its timer was due at %s", inst.ID, inst.FinishedAt, at)
		}
		lat = append(lat, inst.FinishedAt.Sub(at))
		if inst.FinishedAt.After(lastFired) {
			lastFired = inst.FinishedAt
		}
	}
	slices.Sort(lat)
	last := lastFired.Sub(due)
	stats := eng.Stats()
	return &Result{
		Workload:      WorkloadTimers,
		Store:         storeName,
		DB:            db,
		Instances:     opts.Instances,
		Concurrency:   opts.Concurrency,
		CreateSeconds: round(createSeconds, 3),
		SpreadSeconds: round(opts.Spread.Seconds(), 3),
		Seconds:       round(last.Seconds(), 3),
		PerSecond:     round(float64(len(lat))/max(last.Seconds(), 0.001), 1),
		FirstMs:       ms(lat[0]),
		P50Ms:         ms(lat[len(lat)*50/100]),
		P99Ms:         ms(lat[min(len(lat)-1, len(lat)*99/100)]),
		MaxMs:         ms(lat[len(lat)-1]),
		PeakRSSMB:     peakRSSMB(),
		Commits:       stats.Batches,
		Transitions:   stats.Transitions,
		Conflicts:     stats.Conflicts,
		GoVersion:     runtime.Version(),
		CPUs:          runtime.NumCPU(),
	}, nil
}

// shiftedClock is the system clock moved by a constant offset: durations
// and timers are real.
type shiftedClock struct{ off time.Duration }

func (c *shiftedClock) Now() time.Time { return time.Now().Add(c.off) }

func (c *shiftedClock) NewTimer(d time.Duration) ordotype.Timer {
	return realTimer{time.NewTimer(d)}
}

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

func (r *Result) printTimers(w io.Writer) {
	if r.SpreadSeconds > 0 {
		fmt.Fprintf(w, "workload     %s (one timer step per instance, due evenly from T to T+%gs)\n", r.Workload, r.SpreadSeconds)
	} else {
		fmt.Fprintf(w, "workload     %s (one timer step per instance, all due at the same instant T)\n", r.Workload)
	}
	durable := "synchronous=FULL"
	if r.Store == "postgres" {
		durable = "synchronous_commit=on"
	}
	fmt.Fprintf(w, "store        %s (%s) %s\n", r.Store, durable, r.DB)
	fmt.Fprintf(w, "instances    %d started in %.3fs (concurrency %d)\n", r.Instances, r.CreateSeconds, r.Concurrency)
	fmt.Fprintf(w, "fired        all by T+%.3fs, %.1f timers/s\n", r.Seconds, r.PerSecond)
	fmt.Fprintf(w, "lateness     min %.2fms  p50 %.2fms  p99 %.2fms  max %.2fms\n", r.FirstMs, r.P50Ms, r.P99Ms, r.MaxMs)
	fmt.Fprintf(w, "peak RSS     %.1f MB\n", r.PeakRSSMB)
	avg := 0.0
	if r.Commits > 0 {
		avg = float64(r.Transitions) / float64(r.Commits)
	}
	fmt.Fprintf(w, "commits      %d while firing (%.1f transitions each), %d conflicts\n", r.Commits, avg, r.Conflicts)
	fmt.Fprintf(w, "machine      %d CPUs, %s\n", r.CPUs, r.GoVersion)
}
