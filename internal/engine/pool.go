package engine

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// pool runs the tasks of one kind that this process can handle, on a fixed
// number of worker goroutines.
//
// A slot is reserved for a task before the task is leased to this process,
// so a task that is leased here always has room in the ready channel and is
// never held without a worker in sight: tasks created by this process's own
// transitions are leased at insert time and handed over in memory (no claim
// query); tasks beyond capacity are inserted unleased and claimed later by
// the scheduler.
type pool struct {
	kind     ordotype.TaskKind
	capacity int64
	reserved atomic.Int64
	ready    chan *ordostore.Task
	handle   func(context.Context, *ordostore.Task)
	onDone   func() // called after each task
	wg       sync.WaitGroup

	mu     sync.RWMutex
	queues map[string]bool

	closeMu  sync.RWMutex
	closed   bool
	stopping atomic.Bool // workers skip queued tasks once set

	heldMu sync.Mutex
	held   map[int64]struct{} // tasks queued or running here: their leases are renewed
}

func newPool(kind ordotype.TaskKind, workers, capacity int, handle func(context.Context, *ordostore.Task), onDone func()) *pool {
	if capacity < workers {
		capacity = workers
	}
	p := &pool{
		kind:     kind,
		capacity: int64(capacity),
		ready:    make(chan *ordostore.Task, capacity),
		handle:   handle,
		onDone:   onDone,
		queues:   map[string]bool{},
		held:     map[int64]struct{}{},
	}
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

func (p *pool) work() {
	defer p.wg.Done()
	for t := range p.ready {
		if !p.stopping.Load() {
			p.handle(context.Background(), t)
		}
		p.heldMu.Lock()
		delete(p.held, t.ID)
		p.heldMu.Unlock()
		p.reserved.Add(-1)
		p.onDone()
	}
}

// tryReserve takes a slot, or reports that the pool is full.
func (p *pool) tryReserve() bool {
	for {
		r := p.reserved.Load()
		if r >= p.capacity {
			return false
		}
		if p.reserved.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

func (p *pool) unreserve(n int) { p.reserved.Add(-int64(n)) }

// free returns how many slots are free.
func (p *pool) free() int { return int(p.capacity - p.reserved.Load()) }

// push hands a task whose slot is reserved to the workers. It never blocks.
// It returns false, and releases the slot, once the pool is closed.
func (p *pool) push(t *ordostore.Task) bool {
	p.closeMu.RLock()
	defer p.closeMu.RUnlock()
	if p.closed {
		p.reserved.Add(-1)
		return false
	}
	p.heldMu.Lock()
	p.held[t.ID] = struct{}{}
	p.heldMu.Unlock()
	p.ready <- t
	return true
}

// heldIDs returns the IDs of the tasks queued or running in the pool.
func (p *pool) heldIDs(ids []int64) []int64 {
	p.heldMu.Lock()
	defer p.heldMu.Unlock()
	for id := range p.held {
		ids = append(ids, id)
	}
	return ids
}

// busy reports whether any task is queued or running.
func (p *pool) busy() bool { return p.reserved.Load() > 0 }

func (p *pool) addQueue(q string) {
	p.mu.Lock()
	p.queues[q] = true
	p.mu.Unlock()
}

func (p *pool) has(q string) bool {
	p.mu.RLock()
	ok := p.queues[q]
	p.mu.RUnlock()
	return ok
}

// queueList returns the queues, or nil when the pool takes any queue.
func (p *pool) queueList() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.queues["*"] {
		return nil
	}
	qs := make([]string, 0, len(p.queues))
	for q := range p.queues {
		qs = append(qs, q)
	}
	slices.Sort(qs)
	return qs
}

// close stops the workers: each finishes the task it is running, and tasks
// still queued are left (their leases are handed back by the engine).
func (p *pool) close() {
	p.stopping.Store(true)
	p.closeMu.Lock()
	if !p.closed {
		p.closed = true
		close(p.ready)
	}
	p.closeMu.Unlock()
	p.wg.Wait()
}
