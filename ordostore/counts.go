package ordostore

import (
	"time"

	"github.com/ordoflow/ordo/ordotype"
)

// CountInstancesParams are the parameters of [Store.CountInstances].
type CountInstancesParams struct {
	// Statuses to count; nil or empty counts every status. Counting only
	// the statuses of instances that have not ended keeps the query to the
	// few rows of live instances, whatever the size of the history.
	Statuses []ordotype.Status
}

// InstanceCount is the number of instances of one workflow in one status.
type InstanceCount struct {
	Workflow string
	Status   ordotype.Status
	N        int
}

// CountQueuesParams are the parameters of [Store.CountQueues].
type CountQueuesParams struct {
	// Now is the time leases are compared with.
	Now time.Time
}

// QueueCount is the number of tasks of one kind in one queue.
type QueueCount struct {
	Kind  ordotype.TaskKind
	Queue string
	N     int
	// Expired counts the tasks among N that are leased, with a lease that
	// ended before Now.
	Expired int
}
