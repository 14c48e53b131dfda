package ordotest

import (
	"context"
	"fmt"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/internal/testhook"
)

// Driver runs an engine whose clock is a [FakeClock] step by step, outside a
// test: a program (a demo, a simulation) can make a week pass at once. A
// [Tester] does the same inside a test.
type Driver struct {
	eng   *ordo.Engine
	clock *FakeClock
	max   int
}

// Drive returns a driver of eng, which must have been opened with clock as
// its Config.Clock.
func Drive(eng *ordo.Engine, clock *FakeClock) *Driver {
	return &Driver{eng: eng, clock: clock, max: 10000}
}

// RunDue runs everything that is due now, and what that makes due now,
// without moving the clock.
func (d *Driver) RunDue(ctx context.Context) error {
	return testhook.EngineOf(d.eng).Idle(ctx)
}

// RunUntilIdle runs everything due, then moves the clock to the next task
// due (a timer, a retry, a timeout) and runs again, until nothing is left
// but waits without a deadline.
func (d *Driver) RunUntilIdle(ctx context.Context) error {
	eng := testhook.EngineOf(d.eng)
	for range d.max {
		if err := eng.Idle(ctx); err != nil {
			return err
		}
		next, ok, err := eng.NextDue(ctx)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		d.clock.Set(next)
	}
	return fmt.Errorf("ordotest: still busy after %d clock moves", d.max)
}
