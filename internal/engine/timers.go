package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordoflow/ordo/internal/executor"
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
// claimed by a process that dies is claimed again when its lease ends.
const (
	// timerBatch caps the due timers taken by one claim query.
	timerBatch = 2048
	// timerFirers is how many timers of a batch fire at once: enough to
	// fill the group commit's batches.
	timerFirers = 1024
)

var timerQueues = []string{executor.QueueTimer}

// fireTimers claims the timers that are due and fires them, batch after
// batch, until none is due. It returns how many it fired.
func (e *Engine) fireTimers(ctx context.Context) (int, error) {
	total := 0
	for !e.stopping.Load() {
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
		e.fire(ctx, tasks)
		total += len(tasks)
		if len(tasks) < timerBatch {
			break
		}
	}
	return total, nil
}

// fire fires a batch of claimed timers and returns when each is committed
// (or has failed and will be claimed again when its lease ends).
func (e *Engine) fire(ctx context.Context, tasks []*ordostore.Task) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(len(tasks), timerFirers) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(tasks) {
					return
				}
				e.runStep(ctx, tasks[i])
			}
		})
	}
	wg.Wait()
}

// nextTimerDue returns the earliest due time of an unleased timer.
func (e *Engine) nextTimerDue(ctx context.Context) (t time.Time, ok bool, err error) {
	return e.store.NextTaskDue(ctx, &ordostore.NextTaskDueParams{Kinds: []ordotype.TaskKind{ordotype.TaskStep}, Queues: timerQueues})
}
