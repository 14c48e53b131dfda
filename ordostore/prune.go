package ordostore

import (
	"time"

	"github.com/ordoflow/ordo/ordotype"
)

// PruneParams are the parameters of [Store.PruneInstances].
type PruneParams struct {
	// FinishedBefore is the cutoff: instances that reached a finished
	// status ([PrunableStatuses]) before it are deleted. Required.
	FinishedBefore time.Time
	// Batch caps the instances deleted by one transaction, so that a large
	// prune holds no lock for long. Defaults to 1000.
	Batch int
	// DryRun counts what would be deleted and deletes nothing.
	DryRun bool
}

// DefaultPruneBatch is the default of [PruneParams.Batch].
const DefaultPruneBatch = 1000

// PrunableStatuses are the statuses of the instances that
// [Store.PruneInstances] deletes: the ones an instance never leaves.
// An instance parked for review is not finished and is kept.
var PrunableStatuses = []ordotype.Status{
	ordotype.StatusCompleted, ordotype.StatusFailed, ordotype.StatusCompensated, ordotype.StatusCancelled,
}
