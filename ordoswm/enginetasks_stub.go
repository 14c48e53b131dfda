//go:build !ordo_remote_tasks

package ordoswm

import "github.com/ordoflow/ordo"

// EngineTasks returns the [Tasks] of an engine's remote task API. This
// build has none: it returns nil, and task events fail with ErrNoTasks.
//
// (Built with the tag ordo_remote_tasks, enginetasks.go adapts the
// engine's ListTasks, CompleteTask and FailTask instead.)
func EngineTasks(*ordo.Engine) Tasks { return nil }
