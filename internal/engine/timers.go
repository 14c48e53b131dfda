package engine

import (
	"context"
	"encoding/json"
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
// together waits the same seven days). The scheduler claims due timers in
// batches of timerBatch and fires each batch with timerFirers goroutines,
// which exist only while a batch fires. Firing a timer is the ordinary
// completion of its task (runStep: StepDone with the task's claim), so a
// timer is journaled once however many processes claim, and a timer
// claimed by a process that dies is claimed again when its lease ends (or
// at once by the next process on an exclusive store).
const (
	// timerBatch caps the due timers taken by one claim query.
	timerBatch = 2048
	// timerFirers is how many timers of a batch fire at once: enough to
	// fill the group commit's batches.
	timerFirers = 1024
	// timerBatchesInFlight is how many claimed batches fire at once.
	timerBatchesInFlight = 2
)

var timerQueues = []string{executor.QueueTimer}

// fireTimers claims the timers that are due and fires them, batch after
// batch, until none is due, and returns how many it fired once they are
// committed. The next batch is claimed while the previous ones fire, with
// at most timerBatchesInFlight batches firing at once.
func (e *Engine) fireTimers(ctx context.Context) (int, error) {
	total := 0
	if !e.roles.timers {
		return 0, nil
	}
	slots := make(chan struct{}, timerBatchesInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for !e.stopping.Load() {
		slots <- struct{}{}
		now := e.clock.Now().UTC()
		e.m.claims.Add(1)
		tasks, err := e.store.ClaimTasks(ctx, &ordostore.ClaimTasksParams{
			Owner: e.node, Kinds: []ordotype.TaskKind{ordotype.TaskStep}, Queues: timerQueues,
			Now: now, LeaseUntil: now.Add(e.lease), Limit: timerBatch,
		})
		if err != nil {
			return total, err
		}
		e.m.claimedTasks.Add(int64(len(tasks)))
		total += len(tasks)
		wg.Go(func() {
			e.fire(ctx, tasks)
			<-slots
		})
		if len(tasks) < timerBatch {
			break
		}
	}
	return total, nil
}

// fire fires a batch of claimed timers and returns when each is committed
// (or has failed and will be claimed again when its lease ends).
func (e *Engine) fire(ctx context.Context, tasks []*ordostore.Task) {
	rows := e.preload(ctx, tasks)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(tasks), timerFirers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(tasks) {
					return
				}
				e.runStepOn(ctx, tasks[i], rows[tasks[i].InstanceID])
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
	st := new(journal.State)
	if err := json.Unmarshal(row.State, st); err != nil {
		return nil, nil, fmt.Errorf("instance %s: decoding state: %w", id, err)
	}
	def, _, err := e.Definition(ctx, st.Workflow, st.Version)
	if err != nil {
		return nil, nil, err
	}
	e.cache.commit(id, def, st)
	return def, st, nil
}
