package engine

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/internal/executor"
	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// Timer steps are tasks on queue executor.QueueTimer, due when the timer
// is. They are not run by the step pool: a timer has nothing to run, and
// many timers fall due at the same instant (a batch of instances started
// together waits the same seven days). The scheduler takes due timers in
// batches of timerBatch and fires each batch with timerFirers goroutines,
// which exist only while a batch fires. Firing a timer is the ordinary
// completion of its task (runStep: StepDone with the task's claim), so a
// timer is journaled once however often it is fired.
//
// On a shared store the batches are claimed: a timer claimed by a process
// that dies is claimed again when its lease ends. On an exclusive store
// that can list due tasks (ordostore.DueTasksReader) they are read, not
// claimed (readTimers): no other process can take them, so the claim's
// write transaction on the single writer is saved, and one pass at a time
// fires them. A timer whose firing a crash loses is still due when the
// store is opened again.
const (
	// timerBatch caps the due timers taken by one claim or read.
	timerBatch = 2048
	// timerFirers is how many timers of a batch fire at once: enough to
	// fill the group commit's batches.
	timerFirers = 1024
	// timerBatchesInFlight is how many batches fire at once.
	timerBatchesInFlight = 2
)

var timerQueues = []string{executor.QueueTimer}

// dueTimers is a batch of due timers to fire.
type dueTimers struct {
	tasks []*ordostore.Task
	// rows are instance rows read with the batch, by ID; instances not
	// in it are read before the batch fires.
	rows map[string]*ordostore.Instance
	// more is set when more timers may be due after the batch.
	more bool
	// settle, if not nil, is told the outcome of each timer once fired.
	settle func(t *ordostore.Task, ok bool)
}

// fireTimers takes the timers that are due and fires them, batch after
// batch, until none is due, and returns how many it fired once they are
// committed. The next batch is taken while the previous ones fire, with
// at most timerBatchesInFlight batches firing at once.
func (e *Engine) fireTimers(ctx context.Context) (int, error) {
	total := 0
	if !e.roles.timers {
		return 0, nil
	}
	// One pass at a time (the scheduler's, or Idle's): a pass that reads
	// timers must not read those another pass is firing.
	e.timerPass.Lock()
	defer e.timerPass.Unlock()
	next := e.claimTimers
	if r, ok := e.store.(ordostore.DueTasksReader); ok && e.exclusive {
		next = e.readTimers(r)
	}
	slots := make(chan struct{}, timerBatchesInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for !e.stopping.Load() {
		slots <- struct{}{}
		e.m.claims.Add(1)
		// Counted as firing from before the claim, so that Idle never sees
		// a timer that is claimed and not yet counted.
		e.firing.Add(timerBatch)
		batch, err := next(ctx)
		e.firing.Add(int64(len(batch.tasks) - timerBatch))
		if err != nil {
			<-slots
			return total, err
		}
		e.m.claimed(batch.tasks)
		total += len(batch.tasks)
		wg.Go(func() {
			e.fire(ctx, batch)
			<-slots
		})
		if !batch.more {
			break
		}
	}
	return total, nil
}

// claimTimers takes the next batch on a shared store: it leases it.
func (e *Engine) claimTimers(ctx context.Context) (dueTimers, error) {
	now := e.clock.Now().UTC()
	tasks, err := e.store.ClaimTasks(ctx, &ordostore.ClaimTasksParams{
		Owner: e.node, Kinds: []ordotype.TaskKind{ordotype.TaskStep}, Queues: timerQueues,
		Now: now, LeaseUntil: now.Add(e.lease), Limit: timerBatch,
	})
	return dueTimers{tasks: tasks, more: len(tasks) == timerBatch}, err
}

// readTimers returns the function that takes the next batch of a pass on
// an exclusive store: it pages through the due timers without leasing
// them. Within the pass the page's position keeps it from reading a timer
// twice; across passes nothing is in flight, as each pass waits for the
// timers it fires. A timer whose firing failed is left out until its
// retry time (e.timerRetries), as its lease would have kept it.
func (e *Engine) readTimers(r ordostore.DueTasksReader) func(context.Context) (dueTimers, error) {
	e.timerRetries.forget(e.clock.Now())
	var last *ordostore.Task // of the previous page
	return func(ctx context.Context) (dueTimers, error) {
		now := e.clock.Now().UTC()
		params := &ordostore.DueTasksParams{
			Kind: ordotype.TaskStep, Queue: executor.QueueTimer, Now: now, Limit: timerBatch,
		}
		if last != nil {
			params.AfterDueAt, params.AfterID = last.DueAt, last.ID
		}
		page, err := r.DueTasks(ctx, params)
		if err != nil {
			return dueTimers{}, err
		}
		batch := dueTimers{
			tasks: make([]*ordostore.Task, 0, len(page)),
			rows:  make(map[string]*ordostore.Instance, len(page)),
			more:  len(page) == timerBatch,
		}
		for _, d := range page {
			last = d.Task
			if e.timerRetries.waiting(d.Task.ID) {
				continue
			}
			batch.tasks = append(batch.tasks, d.Task)
			batch.rows[d.Task.InstanceID] = &ordostore.Instance{ID: d.Task.InstanceID, State: d.InstanceState}
		}
		retryAt := now.Add(e.lease)
		batch.settle = func(t *ordostore.Task, ok bool) {
			if !ok {
				e.timerRetries.hold(t.ID, retryAt)
			}
		}
		return batch, nil
	}
}

// timerRetries are the timers, fired without a lease on an exclusive
// store, whose firing failed: each waits for its retry time.
type timerRetries struct {
	mu sync.Mutex
	at map[int64]time.Time
}

// hold keeps timer id from firing before retryAt.
func (r *timerRetries) hold(id int64, retryAt time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.at == nil {
		r.at = make(map[int64]time.Time)
	}
	r.at[id] = retryAt
}

// waiting reports whether timer id waits for its retry time.
func (r *timerRetries) waiting(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.at[id]
	return ok
}

// forget lets the timers whose retry time has come fire again. It is
// called at the start of a pass, which reads them again if they are still
// due (and so forgets those that are gone).
func (r *timerRetries) forget(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, at := range r.at {
		if !now.Before(at) {
			delete(r.at, id)
		}
	}
}

// fire fires a batch of timers and returns when each is committed (or has
// failed: it is fired again when its lease ends, or, unleased, when its
// retry time in e.timerRetries comes).
func (e *Engine) fire(ctx context.Context, batch dueTimers) {
	tasks, rows := batch.tasks, batch.rows
	if rows == nil {
		rows = e.preload(ctx, tasks)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(tasks), timerFirers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(tasks) {
					return
				}
				t := tasks[i]
				ok := false
				if !e.stopping.Load() { // else Stop hands the lease back
					ok = e.runStepOn(ctx, t, rows[t.InstanceID])
				}
				if batch.settle != nil {
					batch.settle(t, ok)
				}
				e.firing.Add(-1)
			}
		})
	}
	wg.Wait()
}

// preload reads in one query, when the store can, the instances of tasks
// that are not in the cache. Those it misses are read one by one.
func (e *Engine) preload(ctx context.Context, tasks []*ordostore.Task) map[string]*ordostore.Instance {
	getter, ok := e.store.(ordostore.InstancesGetter)
	if !ok {
		return nil
	}
	ids := make([]string, 0, len(tasks))
	for _, t := range tasks {
		if _, st := e.cache.get(t.InstanceID); st == nil {
			ids = append(ids, t.InstanceID)
		}
	}
	insts, err := getter.GetInstances(ctx, ids)
	if err != nil {
		e.log.WarnContext(ctx, "reading the instances of due timers", "instances", len(ids), "error", err)
		return nil
	}
	rows := make(map[string]*ordostore.Instance, len(insts))
	for _, inst := range insts {
		rows[inst.ID] = inst
	}
	return rows
}

// nextTimerDue returns the earliest due time of an unleased timer.
func (e *Engine) nextTimerDue(ctx context.Context) (t time.Time, ok bool, err error) {
	if !e.roles.timers {
		return time.Time{}, false, nil
	}
	return e.store.NextTaskDue(ctx, &ordostore.NextTaskDueParams{Kinds: []ordotype.TaskKind{ordotype.TaskStep}, Queues: timerQueues})
}

// loadRow is load (from the cache if there) for an instance whose stored
// row may have been read already (row nil: read it).
func (e *Engine) loadRow(ctx context.Context, id string, row *ordostore.Instance) (*definition.Workflow, *journal.State, error) {
	if row == nil {
		return e.load(ctx, id, false)
	}
	if def, st := e.cache.get(id); st != nil {
		return def, st, nil
	}
	st, err := journal.DecodeState(row.State)
	if err != nil {
		return nil, nil, fmt.Errorf("instance %s: decoding state: %w", id, err)
	}
	def, _, err := e.Definition(ctx, st.Workflow, st.Version)
	if err != nil {
		return nil, nil, err
	}
	e.cache.commit(id, def, st)
	return def, st, nil
}
