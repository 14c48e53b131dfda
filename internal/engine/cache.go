package engine

import (
	"sync"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/internal/journal"
)

// stateCache keeps the folded state of running instances so that the hot
// path does not read the instance row before every step. It holds running
// instances only (finished ones are dropped), so it does not grow with the
// number of finished instances. Cached states are never modified: Decide
// works on a copy.
//
// Each entry has two states. committed is durable: workers and Wait read it,
// so a handler never sees state that might not survive a crash. pending,
// set only on an exclusive store, is the latest decided state whose commit
// is on its way: the next decision for the instance builds on it, so two
// branches finishing together go into the same group commit instead of one
// waiting for the other's fsync. If that commit fails, the transitions
// built on it fail their sequence check and are decided again.
//
// An entry may be stale when another process advanced the instance: the
// append then conflicts and the engine reloads.
type stateCache struct {
	max int
	mu  sync.Mutex
	m   map[string]*cacheEntry
}

type cacheEntry struct {
	def       *definition.Workflow
	committed *journal.State
	pending   *journal.State
}

func newStateCache(max int) *stateCache {
	return &stateCache{max: max, m: make(map[string]*cacheEntry)}
}

// get returns the committed state.
func (c *stateCache) get(id string) (*definition.Workflow, *journal.State) {
	if c.max < 0 {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ent := c.m[id]; ent != nil && ent.committed != nil {
		return ent.def, ent.committed
	}
	return nil, nil
}

// latest returns the pending state if there is one (pending true), else
// the committed one.
func (c *stateCache) latest(id string) (def *definition.Workflow, st *journal.State, pending bool) {
	if c.max < 0 {
		return nil, nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ent := c.m[id]
	switch {
	case ent == nil:
		return nil, nil, false
	case ent.pending != nil:
		return ent.def, ent.pending, true
	}
	return ent.def, ent.committed, false
}

// setPending records a decided state whose commit is on its way.
func (c *stateCache) setPending(id string, def *definition.Workflow, st *journal.State) {
	if c.max < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ent := c.entry(id, def); ent != nil && (ent.pending == nil || ent.pending.Seq < st.Seq) {
		ent.pending = st
	}
}

// commit records a durable state. A finished instance leaves the cache.
func (c *stateCache) commit(id string, def *definition.Workflow, st *journal.State) {
	if c.max < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st.Status.Terminal() {
		delete(c.m, id)
		return
	}
	ent := c.entry(id, def)
	if ent == nil {
		return
	}
	if ent.committed == nil || ent.committed.Seq < st.Seq {
		ent.committed = st
	}
	if ent.pending != nil && ent.pending.Seq <= st.Seq {
		ent.pending = nil
	}
}

// entry returns id's entry, creating it (evicting another when full).
func (c *stateCache) entry(id string, def *definition.Workflow) *cacheEntry {
	ent := c.m[id]
	if ent != nil {
		return ent
	}
	if len(c.m) >= c.max {
		for k := range c.m { // evict one arbitrary entry
			delete(c.m, k)
			break
		}
	}
	ent = &cacheEntry{def: def}
	c.m[id] = ent
	return ent
}

// drop forgets an instance: the next reader loads it from the store.
func (c *stateCache) drop(id string) {
	if c.max < 0 {
		return
	}
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}
