package ordostore

import (
	"context"
	"time"

	"github.com/ordoflow/ordo/ordotype"
)

// InstancesGetter is implemented by stores that read many instances in one
// query. It is optional: the engine uses it, when the store has it, to load
// the instances of a batch of due timers at once, and reads them one by one
// otherwise. ordostoretest checks it on stores that implement it.
type InstancesGetter interface {
	// GetInstances returns the instances among ids that exist, in no
	// particular order. Unknown IDs are left out; no ID is an error.
	GetInstances(ctx context.Context, ids []string) ([]*Instance, error)
}

// DueTasksReader is implemented by exclusive stores (Store.Exclusive) that
// list due tasks without leasing them. It is optional: on such a store the
// engine fires due timers from this list, without the write transaction a
// claim costs, and keeps the timers it is firing in memory so that none is
// fired twice at once. Nothing else can take the tasks (the store has one
// process), a timer whose firing is lost in a crash is still due when the
// store is opened again, and the claim check of Apply completes each task
// once. ordostoretest checks it on stores that implement it.
type DueTasksReader interface {
	// DueTasks returns up to Limit tasks of Kind on Queue that are due
	// (DueAt <= Now) and not leased, in (DueAt, ID) order, starting after
	// the position (AfterDueAt, AfterID) when AfterID is not 0: the caller
	// pages through the due tasks with the last task of the previous page.
	// Each comes with the State of its instance, read with it, which
	// saves the engine a read of the instance before it fires the task.
	DueTasks(ctx context.Context, params *DueTasksParams) ([]DueTask, error)
}

// DueTask is a task returned by [DueTasksReader.DueTasks] and the State of
// its instance when it was read.
type DueTask struct {
	Task          *Task
	InstanceState []byte
}

// DueTasksParams are the parameters of [DueTasksReader.DueTasks].
type DueTasksParams struct {
	Kind       ordotype.TaskKind
	Queue      string
	Now        time.Time
	AfterDueAt time.Time
	AfterID    int64 // 0: from the first due task
	Limit      int
}
