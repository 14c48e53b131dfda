package engine

import "sync"

// keyLock serialises work on one key (an instance ID) while leaving other
// keys free. The engine holds it from Decide to the end of the commit, so
// two branches of one instance finishing at once decide one after the
// other on fresh state instead of racing and losing an optimistic-
// concurrency check. Other processes are still kept out by that check.
type keyLock struct {
	mu    sync.Mutex
	locks map[string]*keyEntry
}

type keyEntry struct {
	mu   sync.Mutex
	refs int
}

func newKeyLock() *keyLock { return &keyLock{locks: make(map[string]*keyEntry)} }

// lock locks key and returns the function that unlocks it.
func (k *keyLock) lock(key string) func() {
	k.mu.Lock()
	e := k.locks[key]
	if e == nil {
		e = &keyEntry{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
