package worker

import "sync"

// maxExtra bounds how many tasks to hold a completion or a poll asks for
// at once: enough for the steps a step usually fans out to.
const maxExtra = 8

// prefetch holds the tasks a worker took, with its completions and polls,
// beyond those its slots run, until a slot frees up ([Options.Prefetch]).
type prefetch struct {
	mu    sync.Mutex
	max   int
	ready []*Task
}

func newPrefetch(n int) *prefetch { return &prefetch{max: n} }

// room returns how many tasks to hold a completion or a poll may ask for:
// those the worker may still hold. Requests under way at once may each ask
// for them, so the worker may hold a few more than max for a while.
func (p *prefetch) room() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(min(p.max-len(p.ready), maxExtra), 0)
}

// hold keeps the extra tasks a completion or a poll brought.
func (p *prefetch) hold(tasks []*Task) {
	if len(tasks) == 0 {
		return
	}
	p.mu.Lock()
	p.ready = append(p.ready, tasks...)
	p.mu.Unlock()
}

// take returns the task held longest, or nil.
func (p *prefetch) take() *Task {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ready) == 0 {
		return nil
	}
	t := p.ready[0]
	p.ready[0] = nil
	p.ready = p.ready[1:]
	return t
}
