package executor

import (
	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/internal/journal"
)

// compensate handles an error whose onError route says compensate: true.
// Until sagas run, it ends the instance as the workflow's failure mode
// says: parked for review, or failed.
func (d *decider) compensate(e *journal.Error) {
	if d.def.OnFailure == definition.FailureReview {
		d.emit(&journal.Event{Type: journal.WorkflowParked, Error: e})
		return
	}
	d.emit(&journal.Event{Type: journal.WorkflowFailed, Error: e})
}
