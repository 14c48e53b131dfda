package engine

import (
	"context"
	"sync"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// committer is the group commit: every transition of this process goes
// through one goroutine that writes whatever has queued up as one batch, in
// one database transaction with one fsync. Under load batches grow by
// themselves (everything that arrived during the previous commit goes into
// the next); when idle a lone transition commits at once.
type committer struct {
	store    ordostore.Store
	maxBatch int
	// workers is the number of batches written at once: 1 on an exclusive
	// store, whose single writer takes one transaction at a time and where
	// transitions must be written in the order they are submitted;
	// sharedCommitters on a shared store, where the database overlaps the
	// transactions (and their fsyncs) and the engine's instance locks,
	// held until the commit, keep two transitions of one instance out of
	// concurrent batches.
	workers int
	wg      sync.WaitGroup
	reqs    chan *commitReq
	stop    chan struct{}
	done    chan struct{}
	metrics *metricsHook
	once    sync.Once
}

type commitReq struct {
	tr  *ordostore.Transition
	res ordostore.TransitionResult
	err error
	ok  chan struct{}
}

var reqPool = sync.Pool{New: func() any { return &commitReq{ok: make(chan struct{}, 1)} }}

func newCommitter(store ordostore.Store, maxBatch int, m *metricsHook) *committer {
	return &committer{
		store:    store,
		maxBatch: maxBatch,
		workers:  1,
		reqs:     make(chan *commitReq, maxBatch*4),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		metrics:  m,
	}
}

// commit queues tr and waits until it is durable (or failed). The result's
// Err carries the transition's own precondition failure; the error return is
// for failures of the whole batch (I/O, closed store).
func (c *committer) commit(ctx context.Context, tr *ordostore.Transition) (ordostore.TransitionResult, error) {
	r, err := c.submit(ctx, tr)
	if err != nil {
		return ordostore.TransitionResult{}, err
	}
	return c.wait(r)
}

// submit queues tr. Transitions are written in the order they are
// submitted.
func (c *committer) submit(ctx context.Context, tr *ordostore.Transition) (*commitReq, error) {
	r := reqPool.Get().(*commitReq)
	r.tr, r.res, r.err = tr, ordostore.TransitionResult{}, nil
	select {
	case c.reqs <- r:
		return r, nil
	case <-c.stop:
		reqPool.Put(r)
		return nil, ordotype.ErrClosed
	case <-ctx.Done():
		reqPool.Put(r)
		return nil, ctx.Err()
	}
}

// wait waits for a submitted transition's outcome. Once queued a request is
// answered, even when the caller's ctx ends: the caller must know whether it
// was written. Only a request that slipped in after the committer stopped
// is never answered.
func (c *committer) wait(r *commitReq) (ordostore.TransitionResult, error) {
	select {
	case <-r.ok:
	case <-c.done:
		select {
		case <-r.ok:
		default:
			return ordostore.TransitionResult{}, ordotype.ErrClosed // r is dropped, not reused
		}
	}
	res, err := r.res, r.err
	r.tr = nil
	reqPool.Put(r)
	return res, err
}

// sharedCommitters is the number of batches written at once on a shared
// store.
const sharedCommitters = 4

func (c *committer) run() {
	defer c.wg.Done()
	batch := make([]*commitReq, 0, c.maxBatch)
	trs := make([]*ordostore.Transition, 0, c.maxBatch)
	for {
		var first *commitReq
		select {
		case first = <-c.reqs:
		case <-c.stop:
			c.drain()
			return
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < c.maxBatch {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		trs = trs[:0]
		for _, r := range batch {
			trs = append(trs, r.tr)
		}
		// The batch is written even if a caller gave up waiting: a queued
		// transition is either fully written or not at all.
		results, err := c.store.Apply(context.Background(), trs)
		c.metrics.batch(len(batch), err)
		for i, r := range batch {
			if err != nil {
				r.err = &storeError{err}
			} else {
				r.res = results[i]
			}
			r.ok <- struct{}{}
		}
	}
}

// drain answers what is still queued at stop with ErrClosed.
func (c *committer) drain() {
	for {
		select {
		case r := <-c.reqs:
			r.err = ordotype.ErrClosed
			r.ok <- struct{}{}
		default:
			return
		}
	}
}

func (c *committer) start() {
	c.wg.Add(c.workers)
	for range c.workers {
		go c.run()
	}
	go func() {
		c.wg.Wait()
		close(c.done)
	}()
}

// close stops the committer after the batch in progress and waits for it.
func (c *committer) close() {
	c.once.Do(func() { close(c.stop) })
	<-c.done
}
