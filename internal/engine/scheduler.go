package engine

import (
	"context"
	"math"
	"time"

	"github.com/ordoflow/ordo/internal/executor"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// claimBatch caps the tasks taken by one claim query.
const claimBatch = 256

// scheduler claims from the store the tasks this process was not handed in
// memory: tasks that became due (retries, timers), tasks beyond the pools'
// capacity, and tasks whose lease ran out. It sleeps until the earliest due
// task, a poke, or the poll interval; nothing that waits is held in memory.
func (e *Engine) scheduler() {
	defer e.schedWG.Done()
	ctx := context.Background()
	for {
		claimed, err := e.claimAll(ctx)
		if err != nil {
			e.log.ErrorContext(ctx, "claiming tasks", "error", err)
		}
		var due <-chan time.Time
		var dueTimer ordotype.Timer
		// While it looks, any task committed for later pokes it (armed 0).
		e.armed.Store(0)
		if next, ok, err := e.nextDue(ctx); err != nil {
			e.log.ErrorContext(ctx, "looking for the next due task", "error", err)
		} else if ok {
			if d := next.Sub(e.clock.Now()); d > 0 {
				dueTimer = e.clock.NewTimer(d)
				due = dueTimer.C()
				e.armed.Store(next.UnixNano())
			} else if claimed > 0 {
				continue // more may be waiting
			}
		} else {
			e.armed.Store(math.MaxInt64) // nothing due: only a task for later wakes it
		}
		poll := e.clock.NewTimer(e.poll)
		stopped := false
		select {
		case <-e.wake:
		case <-e.notified:
		case <-due:
		case <-poll.C():
		case <-e.stop:
			stopped = true
		}
		poll.Stop()
		if dueTimer != nil {
			dueTimer.Stop()
		}
		if stopped {
			return
		}
	}
}

// claimAll fires the due timers and fills the pools' free slots with due
// tasks from the store.
func (e *Engine) claimAll(ctx context.Context) (int, error) {
	total, err := e.fireTimers(ctx)
	if err != nil {
		return total, err
	}
	for _, p := range e.pools() {
		queues := p.queueList()
		if queues != nil && len(queues) == 0 {
			continue
		}
		for {
			if e.stopping.Load() {
				return total, nil
			}
			want := min(p.free(), claimBatch)
			got := 0
			for got < want && p.tryReserve() {
				got++
			}
			if got == 0 {
				e.starved.Store(true)
				break
			}
			now := e.clock.Now().UTC()
			e.m.claims.Add(1)
			tasks, err := e.store.ClaimTasks(ctx, &ordostore.ClaimTasksParams{
				Owner: e.node, Kinds: []ordotype.TaskKind{p.kind}, Queues: queues,
				Now: now, LeaseUntil: now.Add(e.lease), Limit: got,
			})
			if err != nil {
				p.unreserve(got)
				return total, err
			}
			p.unreserve(got - len(tasks))
			e.m.claimed(tasks)
			for _, t := range tasks {
				p.push(t)
			}
			total += len(tasks)
			if len(tasks) < got {
				break
			}
		}
	}
	return total, nil
}

// nextDue returns the earliest due time of an unleased task this process
// could run.
func (e *Engine) nextDue(ctx context.Context) (time.Time, bool, error) {
	best, found, err := e.nextTimerDue(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	for _, p := range e.pools() {
		queues := p.queueList()
		if queues != nil && len(queues) == 0 {
			continue
		}
		t, ok, err := e.store.NextTaskDue(ctx, &ordostore.NextTaskDueParams{Kinds: []ordotype.TaskKind{p.kind}, Queues: queues})
		if err != nil {
			return time.Time{}, false, err
		}
		if ok && (!found || t.Before(best)) {
			best, found = t, true
		}
	}
	return best, found, nil
}

// taskDone is called by the pools after each task: a scheduler that could
// not claim for lack of room is woken.
func (e *Engine) taskDone() {
	if e.starved.CompareAndSwap(true, false) {
		e.poke()
	}
}

// Idle runs the scheduler's claim pass in the caller and waits until the
// pools have nothing queued or running and no more tasks can be claimed now.
// It is for tests driving a fake clock.
func (e *Engine) Idle(ctx context.Context) error {
	e.expireMessages(ctx)
	for {
		n, err := e.claimAll(ctx)
		if err != nil {
			return err
		}
		for e.busy() {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Microsecond):
			}
		}
		if n == 0 {
			n, err = e.claimAll(ctx)
			if err != nil {
				return err
			}
			if n == 0 && !e.busy() {
				return nil
			}
		}
	}
}

// busy reports whether tasks are queued or running in the pools, or
// timers claimed by the scheduler are still firing.
func (e *Engine) busy() bool {
	if e.firing.Load() > 0 {
		return true
	}
	for _, p := range e.pools() {
		if p.busy() {
			return true
		}
	}
	return false
}

// NextDue returns the earliest due time of an unleased task this process
// could run, or ok=false. It is for tests driving a fake clock.
// A wait without a deadline (due at executor.Never) is not reported.
func (e *Engine) NextDue(ctx context.Context) (time.Time, bool, error) {
	t, ok, err := e.nextDue(ctx)
	if ok && !t.Before(executor.Never) {
		return time.Time{}, false, err
	}
	return t, ok, err
}

// heartbeat renews the leases of the tasks this process holds (queued or
// running) every third of the lease duration, so that a step that runs
// longer than a lease is not claimed and run again by the scheduler or by
// another process while it still runs.
func (e *Engine) heartbeat() {
	defer e.schedWG.Done()
	ctx := context.Background()
	var ids []int64
	for {
		t := e.clock.NewTimer(e.lease / 3)
		select {
		case <-e.stop:
			t.Stop()
			return
		case <-t.C():
		}
		ids = ids[:0]
		for _, p := range e.pools() {
			ids = p.heldIDs(ids)
		}
		if len(ids) == 0 {
			continue
		}
		until := e.clock.Now().UTC().Add(e.lease)
		if _, err := e.store.ExtendLeases(ctx, &ordostore.ExtendLeasesParams{Owner: e.node, IDs: ids, Until: until}); err != nil {
			e.log.ErrorContext(ctx, "renewing task leases", "tasks", len(ids), "error", err)
		}
	}
}

// janitor expires the messages no receive step took in time.
func (e *Engine) janitor() {
	defer e.schedWG.Done()
	ctx := context.Background()
	for {
		t := e.clock.NewTimer(10 * e.poll)
		select {
		case <-e.stop:
			t.Stop()
			return
		case <-t.C():
		}
		e.expireMessages(ctx)
	}
}
