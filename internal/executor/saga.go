package executor

import (
	"encoding/json"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/ordotype"
)

// Error codes the engine gives.
const (
	codeTimeout   = "timeout"
	codeCancelled = "cancelled"
)

// compensateSuffix ends the id of a compensation step.
const compensateSuffix = ".compensate"

// compensate handles an error whose onError route says compensate: true:
// the saga runs whatever the workflow's failure mode.
func (d *decider) compensate(e *journal.Error) {
	if !d.st.Status.Active() || d.st.Compensating {
		return
	}
	d.startCompensation(e)
}

// failWorkflow ends an instance that failed for good as its workflow says:
// run the saga, park it for review, or fail it.
func (d *decider) failWorkflow(e *journal.Error) {
	if !d.st.Status.Active() || d.st.Compensating {
		return
	}
	switch d.def.OnFailure {
	case definition.FailureCompensate:
		d.startCompensation(e)
	case definition.FailureReview:
		d.emit(&journal.Event{Type: journal.WorkflowParked, Error: e})
	default:
		d.emit(&journal.Event{Type: journal.WorkflowFailed, Error: e})
	}
}

// startCompensation starts the saga: the compensations of the completed
// steps run one at a time, in reverse order of completion.
func (d *decider) startCompensation(e *journal.Error) {
	d.emit(&journal.Event{Type: journal.WorkflowCompensating, Error: e})
	d.cancelChildren("the parent instance compensates")
	d.continueCompensation()
}

// hasCompensations reports whether a completed step has a compensation.
func (d *decider) hasCompensations() bool {
	for _, s := range d.def.Steps {
		if s.Compensate != nil && d.status(s.ID) == ordotype.StepCompleted {
			return true
		}
	}
	return false
}

// continueCompensation runs the next compensation, or ends the saga when
// none is left: compensated, or cancelled when a cancel started it.
func (d *decider) continueCompensation() {
	var next *definition.Step
	for _, s := range d.def.Steps {
		if s.Compensate == nil {
			continue
		}
		if d.status(s.Compensate.ID).Active() {
			return // one at a time
		}
		if d.status(s.ID) == ordotype.StepCompleted &&
			(next == nil || d.stepState(s.ID).CompletedSeq > d.stepState(next.ID).CompletedSeq) {
			next = s
		}
	}
	if next != nil {
		ss := d.stepState(next.ID)
		in, _ := json.Marshal(map[string]json.RawMessage{"input": ss.Input, "output": ss.Output})
		d.schedule(next.Compensate, in)
		return
	}
	// A step with a compensation that is still running may yet complete
	// and need it: wait for it. Steps that only wait (a timer, a message,
	// a person) are given up.
	for _, s := range d.def.Steps {
		if st := d.status(s.ID); s.Compensate != nil && !Waits(s.Kind) && (st == ordotype.StepScheduled || st == ordotype.StepRunning) {
			return
		}
	}
	if e := d.st.Error; e != nil && e.Code == codeCancelled {
		d.emit(&journal.Event{Type: journal.WorkflowCancelled, Reason: e.Message})
		return
	}
	d.emit(&journal.Event{Type: journal.WorkflowCompensated})
}

// resubmitCompensation runs again the compensations that failed, and the
// saga goes on from there.
func (d *decider) resubmitCompensation(c Resubmit) error {
	var reset []string
	for _, s := range d.def.Steps {
		if s.Compensate != nil && d.status(s.Compensate.ID) == ordotype.StepFailed {
			reset = append(reset, s.Compensate.ID)
		}
	}
	d.emit(&journal.Event{Type: journal.WorkflowResubmitted, Reset: reset, Input: c.Input, Reason: c.Reason})
	d.continueCompensation()
	return nil
}
