package definition

import (
	"fmt"
	"slices"
	"strings"
)

// resolveReferences checks the step ids in every after, onError, onTimeout
// and next, and links the after dependencies.
func (c *compiler) resolveReferences() {
	for _, e := range c.entries {
		e.deps = c.references(e, "after", e.spec.After, func(i int) string { return child(child(e.path, "after"), i) })
		var handlers []*entry
		for i, r := range e.spec.OnError {
			handlers = append(handlers, c.references(e, "onError", r.Next, func(j int) string {
				return routeNextPath(e.path, e.spec.OnError, i, j)
			})...)
		}
		handlers = append(handlers, c.references(e, "onTimeout", e.spec.OnTimeout, func(i int) string { return child(child(e.path, "onTimeout"), i) })...)
		if e.inGraph {
			e.handlers = handlers
		}
		if e.spec.Next != "" {
			path := child(e.path, "next")
			target, ok := c.byID[e.spec.Next]
			switch {
			case e.spec.Next == e.spec.ID:
				c.problemf(path, "step %q cannot go back to itself (to run a step again when it fails, use retry)", e.spec.ID)
			case !ok:
				c.problemf(path, "unknown step %q%s", e.spec.Next, c.suggestStep(e.spec.Next))
				c.refProblems = true
			case e.inGraph:
				e.next = target
			}
		}
	}
}

// references resolves one list of step ids of step e; pathOf gives the
// spec path of the i-th id.
func (c *compiler) references(e *entry, field string, ids []string, pathOf func(i int) string) []*entry {
	var out []*entry
	seen := map[string]bool{}
	for i, id := range ids {
		path := pathOf(i)
		target, ok := c.byID[id]
		switch {
		case id == e.spec.ID && id != "":
			switch field {
			case "after":
				c.problemf(path, "step %q depends on itself", id)
			case "onError":
				c.problemf(path, "step %q cannot be its own error handler", id)
			default:
				c.problemf(path, "step %q cannot be its own timeout handler", id)
			}
		case seen[id]:
			c.problemf(path, "step %q is listed twice", id)
		case !ok:
			c.problemf(path, "unknown step %q%s", id, c.suggestStep(id))
			c.refProblems = true
		default:
			out = append(out, target)
		}
		seen[id] = true
	}
	return out
}

// maxSuggestions bounds the work spent on suggestions for unknown step ids.
const maxSuggestions = 20

// suggestStep proposes a known step id close to an unknown one.
func (c *compiler) suggestStep(id string) string {
	if c.suggestions >= maxSuggestions {
		return ""
	}
	c.suggestions++
	ids := make([]string, 0, len(c.byID))
	for _, e := range c.entries {
		if e.inGraph {
			ids = append(ids, e.spec.ID)
		}
	}
	if best := closest(id, ids); best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// buildGraph adds the dependencies stages imply, rejects cycles, orders the
// steps and works out roots, error paths and reachability.
func (c *compiler) buildGraph() {
	var nodes []*entry
	for _, e := range c.entries {
		if e.inGraph {
			nodes = append(nodes, e)
		}
	}
	handlerTargets := map[*entry]bool{}
	for _, e := range nodes {
		for _, h := range e.handlers {
			handlerTargets[h] = true
		}
	}
	c.addStageDependencies(nodes, handlerTargets)
	if len(nodes) == 0 || c.checkCycles(nodes) {
		return
	}

	order := topologicalOrder(nodes)
	w := c.wf
	w.Steps = make([]*Step, len(order))
	w.byID = make(map[string]*Step, 2*len(order))
	for i, e := range order {
		s := e.step
		s.Index = i
		s.After = make([]string, len(e.deps))
		for j, d := range e.deps {
			s.After[j] = d.spec.ID
			d.step.Dependents = append(d.step.Dependents, s.ID)
		}
		w.Steps[i] = s
		w.byID[s.ID] = s
		if s.Compensate != nil {
			w.byID[s.Compensate.ID] = s.Compensate
		}
	}

	// A step is on the normal path if it is a root or comes after a step
	// on the normal path; it is reachable if it is on the normal path or an
	// onError/onTimeout edge leads to it from a reachable step.
	dependents := make(map[*entry][]*entry, len(order))
	for _, e := range order {
		for _, d := range e.deps {
			dependents[d] = append(dependents[d], e)
		}
	}
	var roots []*entry
	for _, e := range order {
		if len(e.deps) == 0 && !handlerTargets[e] {
			roots = append(roots, e)
			w.Roots = append(w.Roots, e.step)
		}
	}
	normal := walk(roots, func(e *entry) []*entry { return dependents[e] })
	reached := walk(roots, func(e *entry) []*entry { return append(slices.Clone(dependents[e]), e.handlers...) })
	for _, e := range order {
		e.step.ErrorPathOnly = !normal[e]
	}
	if c.idProblems || c.refProblems {
		return
	}
	if len(roots) == 0 {
		c.problemf("steps", "no step can start: every step has after, or is only an onError/onTimeout target")
		return
	}
	for _, e := range order {
		if !reached[e] {
			c.problemf(e.path, "unreachable: no after, onError or onTimeout path leads here from a step the workflow starts with")
		}
	}
	// A back-edge may only go to an earlier step: one this step is
	// reachable from.
	for _, e := range order {
		if e.next == nil {
			continue
		}
		later := walk([]*entry{e.next}, func(x *entry) []*entry { return append(slices.Clone(dependents[x]), x.handlers...) })
		if !later[e] {
			c.problemf(child(e.path, "next"), "%q is not an earlier step of %q; only a back-edge to an earlier step is allowed (one this step can be reached from through after, onError or onTimeout)", e.next.spec.ID, e.spec.ID)
		}
	}
}

// walk returns the entries reachable from start through next.
func walk(start []*entry, next func(*entry) []*entry) map[*entry]bool {
	seen := make(map[*entry]bool)
	queue := slices.Clone(start)
	for _, e := range start {
		seen[e] = true
	}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		for _, n := range next(e) {
			if !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	return seen
}

// addStageDependencies makes each step of a stage that has no dependency
// inside its own stage come after every step of the previous stage.
//
// Error handling is left alone: a step that onError/onTimeout leads to
// gets no implicit dependencies (that would put it on the normal path),
// and the next stage does not wait for steps of a stage that only run on an
// error path. A stage whose steps all run on error paths, or that is empty,
// passes the previous stage's steps on to the next.
func (c *compiler) addStageDependencies(nodes []*entry, handlerTargets map[*entry]bool) {
	if len(c.spec.Stages) == 0 {
		return
	}
	members := make([][]*entry, len(c.spec.Stages))
	for _, e := range nodes {
		if e.stage >= 0 {
			members[e.stage] = append(members[e.stage], e)
		}
	}

	// errorPath mirrors ErrorPathOnly on the dependencies known so far:
	// a step without after is on an error path if it is a handler target;
	// a step with after is if all its dependencies are.
	const (
		unknown = iota
		visiting
		onNormalPath
		onErrorPath
	)
	memo := map[*entry]int{}
	var errorPath func(e *entry) bool
	errorPath = func(e *entry) bool {
		switch memo[e] {
		case visiting, onNormalPath: // a cycle, reported later
			return false
		case onErrorPath:
			return true
		}
		memo[e] = visiting
		result := handlerTargets[e]
		if len(e.deps) > 0 {
			result = true
			for _, d := range e.deps {
				if !errorPath(d) {
					result = false
					break
				}
			}
		}
		memo[e] = onNormalPath
		if result {
			memo[e] = onErrorPath
		}
		return result
	}

	var previous []*entry // the steps the next stage waits for
	for si, stage := range members {
		for _, e := range stage {
			if handlerTargets[e] || slices.ContainsFunc(e.deps, func(d *entry) bool { return d.stage == si }) {
				continue
			}
			explicit := make(map[*entry]bool, len(e.deps))
			for _, d := range e.deps {
				explicit[d] = true
			}
			for _, p := range previous {
				if !explicit[p] {
					e.deps = append(e.deps, p)
				}
			}
		}
		var waitFor []*entry
		for _, e := range stage {
			if !errorPath(e) {
				waitFor = append(waitFor, e)
			}
		}
		if len(waitFor) > 0 {
			previous = waitFor
		}
	}
}

// checkCycles reports every dependency cycle, once per group of steps
// that depend on each other, and reports whether there was any.
func (c *compiler) checkCycles(nodes []*entry) bool {
	// Tarjan's strongly connected components.
	var (
		index   = map[*entry]int{}
		low     = map[*entry]int{}
		onStack = map[*entry]bool{}
		stack   []*entry
		next    int
		groups  [][]*entry
	)
	var connect func(v *entry)
	connect = func(v *entry) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range v.deps {
			if _, seen := index[w]; !seen {
				connect(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] != index[v] {
			return
		}
		var group []*entry
		for {
			w := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			onStack[w] = false
			group = append(group, w)
			if w == v {
				break
			}
		}
		if len(group) > 1 {
			groups = append(groups, group)
		}
	}
	for _, v := range nodes {
		if _, seen := index[v]; !seen {
			connect(v)
		}
	}
	for _, group := range groups {
		start := slices.MinFunc(group, func(a, b *entry) int { return a.order - b.order })
		cycle := shortestCycle(start, group)
		parts := make([]string, len(cycle)-1)
		for i := range parts {
			if i == 0 {
				parts[i] = fmt.Sprintf("%q comes after %q", cycle[i].spec.ID, cycle[i+1].spec.ID)
			} else {
				parts[i] = fmt.Sprintf("%q after %q", cycle[i].spec.ID, cycle[i+1].spec.ID)
			}
		}
		c.problemf(child(start.path, "after"), "dependency cycle: %s", strings.Join(parts, ", "))
	}
	return len(groups) > 0
}

// shortestCycle returns a shortest path start, d1, ..., start along after
// dependencies, staying inside group.
func shortestCycle(start *entry, group []*entry) []*entry {
	inGroup := map[*entry]bool{}
	for _, e := range group {
		inGroup[e] = true
	}
	parent := map[*entry]*entry{}
	queue := []*entry{start}
	for len(queue) > 0 {
		e := queue[0]
		queue = queue[1:]
		for _, d := range e.deps {
			if d == start {
				path := []*entry{start}
				for p := e; p != start; p = parent[p] {
					path = append(path, p)
				}
				path = append(path, start)
				// path runs backwards from the end; put it in order.
				slices.Reverse(path[1 : len(path)-1])
				return path
			}
			if _, seen := parent[d]; !seen && inGroup[d] {
				parent[d] = e
				queue = append(queue, d)
			}
		}
	}
	return []*entry{start, start} // not reached: start is in a cycle
}

// topologicalOrder sorts the steps so that each comes after its
// dependencies, keeping file order where the dependencies allow it.
// The graph has no cycles.
func topologicalOrder(nodes []*entry) []*entry {
	waiting := make(map[*entry]int, len(nodes))
	dependents := make(map[*entry][]*entry, len(nodes))
	var ready []*entry // sorted by file order
	for _, e := range nodes {
		waiting[e] = len(e.deps)
		for _, d := range e.deps {
			dependents[d] = append(dependents[d], e)
		}
		if len(e.deps) == 0 {
			ready = append(ready, e)
		}
	}
	order := make([]*entry, 0, len(nodes))
	for len(ready) > 0 {
		e := ready[0]
		ready = ready[1:]
		order = append(order, e)
		for _, n := range dependents[e] {
			waiting[n]--
			if waiting[n] == 0 {
				i, _ := slices.BinarySearchFunc(ready, n, func(a, b *entry) int { return a.order - b.order })
				ready = slices.Insert(ready, i, n)
			}
		}
	}
	return order
}
