package engine

import (
	"sync"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/internal/journal"
)

// stateCache keeps the folded state of running instances so that the hot
// path does not read the instance row before every step. It holds running
// instances only (finished ones are dropped), so it does not grow with the
// number of finished instances. An entry may be stale when another process
// advanced the instance: the append then conflicts and the engine reloads.
// Cached states are never modified: Decide works on a copy.
type stateCache struct {
	max int
	mu  sync.Mutex
	m   map[string]cacheEntry
}

type cacheEntry struct {
	def *definition.Workflow
	st  *journal.State
}

func newStateCache(max int) *stateCache {
	return &stateCache{max: max, m: make(map[string]cacheEntry)}
}

func (c *stateCache) get(id string) (*definition.Workflow, *journal.State) {
	if c.max < 0 {
		return nil, nil
	}
	c.mu.Lock()
	ent := c.m[id]
	c.mu.Unlock()
	return ent.def, ent.st
}

func (c *stateCache) put(id string, def *definition.Workflow, st *journal.State) {
	if c.max < 0 {
		return
	}
	c.mu.Lock()
	if old, ok := c.m[id]; ok && old.st.Seq > st.Seq {
		c.mu.Unlock()
		return // a newer state is already here
	}
	if len(c.m) >= c.max {
		if _, ok := c.m[id]; !ok {
			for k := range c.m { // evict one arbitrary entry
				delete(c.m, k)
				break
			}
		}
	}
	c.m[id] = cacheEntry{def: def, st: st}
	c.mu.Unlock()
}

func (c *stateCache) drop(id string) {
	if c.max < 0 {
		return
	}
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

func (c *stateCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
