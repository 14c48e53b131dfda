package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ordoflow/ordo/internal/executor"
	"github.com/ordoflow/ordo/ordostore"
)

// The roles a node can run (Config.Roles). A node without a role neither
// claims nor is handed the work of that role; the work waits in the store
// for a node that has it.
const (
	// RoleAPI accepts commands: starts, resubmits, cancels. The engine
	// itself always accepts them from its Go API; the role decides whether
	// the server serves its HTTP API.
	RoleAPI = "api"
	// RoleExecutor runs steps: Go handlers and built-in http steps.
	RoleExecutor = "executor"
	// RoleEffects performs side effects.
	RoleEffects = "effects"
	// RoleTimers fires timer steps (the tasks of queue ordo.timer).
	RoleTimers = "timers"
)

// AllRoles are every role, in the order they are listed.
var AllRoles = []string{RoleAPI, RoleExecutor, RoleEffects, RoleTimers}

// roleSet is a parsed list of roles.
type roleSet struct {
	api, executor, effects, timers bool
}

// all reports whether every role is in the set.
func (r roleSet) all() bool { return r.api && r.executor && r.effects && r.timers }

// claims reports whether the node takes any work from the store.
func (r roleSet) claims() bool { return r.executor || r.effects || r.timers }

// ParseRoles parses a comma-separated list of roles ("api,executor"). An
// empty string is every role. Unknown or repeated names are errors that
// name them.
func ParseRoles(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return slices.Clone(AllRoles), nil
	}
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		out = append(out, strings.TrimSpace(part))
	}
	if _, err := parseRoles(out); err != nil {
		return nil, err
	}
	return out, nil
}

// parseRoles validates roles; nil or empty means every role.
func parseRoles(roles []string) (roleSet, error) {
	if len(roles) == 0 {
		return roleSet{true, true, true, true}, nil
	}
	var r roleSet
	seen := map[string]bool{}
	for _, name := range roles {
		if seen[name] {
			return roleSet{}, fmt.Errorf("role %q is given twice", name)
		}
		seen[name] = true
		switch name {
		case RoleAPI:
			r.api = true
		case RoleExecutor:
			r.executor = true
		case RoleEffects:
			r.effects = true
		case RoleTimers:
			r.timers = true
		default:
			return roleSet{}, fmt.Errorf("unknown role %q: roles are %s", name, strings.Join(AllRoles, ", "))
		}
	}
	return r, nil
}

// HasRole reports whether this node runs role.
func (e *Engine) HasRole(role string) bool {
	switch role {
	case RoleAPI:
		return e.roles.api
	case RoleExecutor:
		return e.roles.executor
	case RoleEffects:
		return e.roles.effects
	case RoleTimers:
		return e.roles.timers
	}
	return false
}

// checkRoles parses roles for an engine on store. A node that runs only
// some roles needs other nodes for the rest, so its store must be shared.
func checkRoles(roles []string, store ordostore.Store) (roleSet, error) {
	r, err := parseRoles(roles)
	if err != nil {
		return roleSet{}, fmt.Errorf("engine: %w", err)
	}
	if !r.all() && store.Exclusive() {
		return roleSet{}, fmt.Errorf("engine: roles %s leave work to other nodes, but a %s store is used by one process only: run every role, or use PostgreSQL",
			strings.Join(roles, ","), store.DatabaseName())
	}
	return r, nil
}

// addRoleQueues gives the pools the queues of this node's roles: a pool
// without queues neither claims tasks nor is handed any at insert time, so
// tasks of a role this node lacks are committed unleased and wait for a
// node that has it. It also subscribes to the store's wake-ups when this
// node claims anything.
func (e *Engine) addRoleQueues() {
	// Timers are fired by the scheduler when the node has the timers role
	// (timers.go), not by the step pool.
	if e.roles.executor {
		e.steps.addQueue(executor.QueueHTTP)
		// The engine's own work for long-running flows: child workflows,
		// parents, cancels, slots, deadlines, receive steps, admissions.
		for _, q := range controlQueues {
			e.steps.addQueue(q)
		}
		e.waits.addQueue("*")
		e.admits.addQueue("*")
	}
	if e.roles.effects {
		e.effects.addQueue("*")
	}
	if n, ok := e.store.(ordostore.Notifier); ok && e.roles.claims() {
		e.notified = n.Wake()
	}
}
