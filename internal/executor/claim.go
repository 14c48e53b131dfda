package executor

import (
	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/ordotype"
)

// StepClaimed says that a worker took a step's task from its queue: the
// attempt is journaled as started (step.started, with the worker and the
// claim), so that the instance shows it running and who runs it. A task
// that is delivered again after its lease ran out is claimed again, with
// the same attempt and a higher claim.
type StepClaimed struct {
	Step    string
	Attempt int
	Worker  string
	Claim   int
	// Task is the task's ID, journaled so that a late result for it can be
	// tied to this attempt once the task is done.
	Task int64
}

// StepRejected records a result, failure or heartbeat that a worker sent
// with a claim the task no longer has (its lease ran out and it was claimed
// again): the result is refused, and journaled as step.rejected so that the
// refusal can be seen. It changes nothing else.
type StepRejected struct {
	Step    string
	Attempt int
	Worker  string
	Claim   int
	Reason  string
}

func (StepClaimed) command()  {}
func (StepRejected) command() {}

func (d *decider) stepClaimed(c StepClaimed) error {
	ss := d.stepState(c.Step)
	if d.st.Status.Terminal() || ss.Attempt != c.Attempt || !ss.Status.Active() || d.def.Step(c.Step) == nil {
		return ErrStale
	}
	d.emit(&journal.Event{
		Type: journal.StepStarted, Step: c.Step, Attempt: c.Attempt, StartedAt: d.now,
		Worker: c.Worker, Claim: c.Claim, Task: c.Task,
	})
	if step := d.def.Step(c.Step); step.Timeout > 0 {
		// The delivery times out even if no worker calls again: the
		// engine fails it then (QueueTimeout).
		d.tasks = append(d.tasks, NewTask{Kind: ordotype.TaskStep, Queue: QueueTimeout, Step: c.Step, Attempt: c.Attempt, DueAt: d.now.Add(step.Timeout)})
	}
	return nil
}

func (d *decider) stepRejected(c StepRejected) error {
	if d.st.Seq == 0 {
		return ErrStale
	}
	d.emit(&journal.Event{
		Type: journal.StepRejected, Step: c.Step, Attempt: c.Attempt,
		Worker: c.Worker, Claim: c.Claim, Reason: c.Reason,
	})
	return nil
}
