package ordo

import "github.com/ordoflow/ordo/internal/engine"

// The roles of [Config.Roles]. Several processes on one PostgreSQL
// database can split them: say two API nodes, four executors and two
// effect nodes (docs/operations.md).
const (
	// RoleAPI accepts commands. An engine always accepts them from its Go
	// API; the server serves its HTTP API only with this role. A start on
	// a node without the executor role is committed and its first steps
	// wait in the store for an executor node.
	RoleAPI = engine.RoleAPI
	// RoleExecutor runs step handlers and built-in http steps, claiming
	// their tasks.
	RoleExecutor = engine.RoleExecutor
	// RoleEffects performs side effects.
	RoleEffects = engine.RoleEffects
	// RoleTimers fires timer steps.
	RoleTimers = engine.RoleTimers
)

// ParseRoles parses a comma-separated list of roles, as `ordo server
// --roles` takes it ("api,executor"). An empty string is every role.
// Unknown or repeated roles are errors that name them.
func ParseRoles(s string) ([]string, error) { return engine.ParseRoles(s) }
