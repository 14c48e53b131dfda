// Package ordotest helps users test their workflows: a [Tester] runs an
// engine on a temporary SQLite file with a [FakeClock], and
// [Tester.RunUntilIdle] drives every instance as far as it can go, moving the
// clock over retry backoffs and timers, so a test of a week-long flow runs in
// milliseconds.
//
//	tt := ordotest.New(t, nil)
//	_, err := tt.Engine.Register(ctx, def, handlers)
//	id := tt.Start("order-fulfilment", input)
//	tt.RunUntilIdle()
//	tt.RequireStatus(id, ordo.StatusCompleted)
package ordotest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/internal/testhook"
)

// Options configure [New]. A nil *Options means all defaults.
type Options struct {
	// Config is the engine's configuration; its Clock is replaced by the
	// tester's fake clock.
	Config *ordo.Config
	// Start is the fake clock's starting time. Defaults to
	// 2030-01-01T00:00:00Z.
	Start time.Time
	// DBPath is the SQLite file. Defaults to a file in t.TempDir().
	DBPath string
	// MaxRounds caps the clock moves of one RunUntilIdle. Defaults to 10000.
	MaxRounds int
}

// Tester runs an engine for a test.
type Tester struct {
	Engine *ordo.Engine
	Clock  *FakeClock
	t      testing.TB
	max    int
}

// New starts an engine on a fresh SQLite file with a fake clock. It is
// closed when the test ends.
func New(t testing.TB, opts *Options) *Tester {
	t.Helper()
	if opts == nil {
		opts = &Options{}
	}
	start := opts.Start
	if start.IsZero() {
		start = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	cfg := ordo.Config{}
	if opts.Config != nil {
		cfg = *opts.Config
	}
	clock := NewFakeClock(start)
	cfg.Clock = clock
	path := opts.DBPath
	if path == "" {
		path = filepath.Join(t.TempDir(), "ordo.db")
	}
	eng, err := ordo.Open(context.Background(), ordo.SQLite(path), &cfg)
	if err != nil {
		t.Fatalf("ordotest: opening engine: %v", err)
	}
	t.Cleanup(func() {
		if err := eng.Close(context.WithoutCancel(context.Background())); err != nil {
			t.Errorf("ordotest: closing engine: %v", err)
		}
	})
	rounds := opts.MaxRounds
	if rounds <= 0 {
		rounds = 10000
	}
	return &Tester{Engine: eng, Clock: clock, t: t, max: rounds}
}

// Start starts an instance and fails the test on error.
func (tt *Tester) Start(workflow string, input any, opts ...ordo.StartOption) string {
	tt.t.Helper()
	id, err := tt.Engine.Start(context.Background(), workflow, input, opts...)
	if err != nil {
		tt.t.Fatalf("ordotest: start %s: %v", workflow, err)
	}
	return id
}

// RunUntilIdle runs everything that can run, then moves the fake clock to
// the next retry or timer and runs again, until nothing this process can do
// is left. Steps waiting for remote workers, messages or people stay
// waiting.
func (tt *Tester) RunUntilIdle() {
	tt.t.Helper()
	d := Drive(tt.Engine, tt.Clock)
	d.max = tt.max
	if err := d.RunUntilIdle(context.Background()); err != nil {
		tt.t.Fatalf("ordotest: running: %v", err)
	}
}

// Get returns an instance and fails the test on error.
// RunDue runs everything that is due now, and what that makes due now,
// without moving the clock: timers and timeouts in the future stay pending.
func (tt *Tester) RunDue() {
	tt.t.Helper()
	if err := testhook.EngineOf(tt.Engine).Idle(context.Background()); err != nil {
		tt.t.Fatalf("ordotest: running: %v", err)
	}
}

func (tt *Tester) Get(id string) *ordo.Instance {
	tt.t.Helper()
	inst, err := tt.Engine.Get(context.Background(), id)
	if err != nil {
		tt.t.Fatalf("ordotest: get %s: %v", id, err)
	}
	return inst
}

// RequireStatus fails the test unless the instance has the given status.
func (tt *Tester) RequireStatus(id string, want ordo.Status) *ordo.Instance {
	tt.t.Helper()
	inst := tt.Get(id)
	if inst.Status != want {
		tt.t.Fatalf("ordotest: instance %s is %s, want %s (error: %v)", id, inst.Status, want, inst.Error)
	}
	return inst
}

// RequireStepStatus fails the test unless the step has the given status.
func (tt *Tester) RequireStepStatus(id, step string, want ordo.StepStatus) *ordo.StepInfo {
	tt.t.Helper()
	s := tt.Get(id).Step(step)
	if s == nil {
		tt.t.Fatalf("ordotest: instance %s has no step %q", id, step)
	}
	if s.Status != want {
		tt.t.Fatalf("ordotest: step %s of %s is %s, want %s", step, id, s.Status, want)
	}
	return s
}
