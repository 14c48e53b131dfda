package engine

import (
	"context"
	"errors"
	"time"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/internal/executor"
	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// Backoff of the retries after a failure of the store (a database that
// restarts, a lost connection): the work is kept in memory and tried again
// until the store answers or the engine stops. These are waits in real
// time, for I/O, not workflow time, so they do not go through the clock.
const (
	storeRetryFirst = 50 * time.Millisecond
	storeRetryMax   = 2 * time.Second
)

// storeError marks an error of the store as a whole (the batch failed, a
// read failed), as opposed to the failed precondition of one transition or
// a decision that was refused.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// isTransient reports whether err is a failure of the store worth trying
// again: not a closed store, and not one of the answers a store gives
// about the data (not found, invalid).
func isTransient(err error) bool {
	var se *storeError
	if !errors.As(err, &se) {
		return false
	}
	return !errors.Is(err, ordotype.ErrClosed) && !errors.Is(err, ordotype.ErrNotFound) && !errors.Is(err, ordotype.ErrInvalid) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}

// backoff waits before the next try and returns the delay after it, or
// false if the engine is stopping.
func (e *Engine) backoff(delay time.Duration) (time.Duration, bool) {
	if e.stopping.Load() {
		return delay, false
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-e.stop:
		return delay, false
	}
	return min(delay*2, storeRetryMax), true
}

// loadRetrying is load that rides out failures of the store.
func (e *Engine) loadRetrying(ctx context.Context, id string, fresh bool) (*definition.Workflow, *journal.State, error) {
	delay := storeRetryFirst
	for {
		def, st, err := e.load(ctx, id, fresh)
		if err == nil || !isTransient(err) {
			return def, st, err
		}
		e.log.WarnContext(ctx, "store unavailable, reading the instance again", logInstance, id, "retry_in", delay, "error", err)
		var ok bool
		if delay, ok = e.backoff(delay); !ok {
			return nil, nil, err
		}
		fresh = true
	}
}

// applyRetrying commits the outcome of a task (cmd, completing ref) like
// apply, and when the store fails as a whole it keeps the outcome and
// tries again, on a freshly read state, until it is written, found to be a
// duplicate, or the engine stops. The task's lease is renewed by the
// heartbeat meanwhile. A commit whose outcome was unknown (the connection
// was lost during COMMIT) is safe to try again: if it was written, the
// instance's seq moved and the task is gone, so the next try is dropped as
// a duplicate.
func (e *Engine) applyRetrying(ctx context.Context, def *definition.Workflow, st *journal.State, cmd executor.Command, ref *ordostore.TaskRef) error {
	delay := storeRetryFirst
	for {
		_, _, err := e.apply(ctx, def, st, cmd, ref)
		if err == nil || !isTransient(err) {
			return err
		}
		e.log.WarnContext(ctx, "store unavailable, committing again", logInstance, st.ID, logTask, ref.ID, "retry_in", delay, "error", err)
		var ok bool
		if delay, ok = e.backoff(delay); !ok {
			return err
		}
		if def, st, err = e.loadRetrying(ctx, st.ID, true); err != nil {
			return err
		}
	}
}
