package executor

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/ordotype"
)

// Queues of the engine's own work: tasks that move an instance on behalf of
// another one or of the clock. Their payloads are JSON objects.
const (
	// QueueParent tells a parent instance that its child ended: a task of
	// the child, created in the transition that ends it.
	QueueParent = "ordo.parent"
	// QueueCancel cancels a child instance: a task of the parent.
	QueueCancel = "ordo.cancel"
	// QueueRelease frees the slots an instance held and admits the next
	// deferred instances: a task of the instance that ended.
	QueueRelease = "ordo.release"
	// QueueDeadline ends an instance that ran past its workflow timeout.
	QueueDeadline = "ordo.deadline"
	// QueueTimeout fails a worker's delivery of a step that ran past the
	// step's timeout: a task of the instance, due when the delivery times
	// out, made when a worker takes the step.
	QueueTimeout = "ordo.timeout"
)

// MessageReceived delivers a message to a waiting receive step.
type MessageReceived struct {
	Step      string
	Attempt   int
	MessageID string
	Payload   json.RawMessage
}

// ChildStarted records the child instance a workflow step started.
type ChildStarted struct {
	Step    string
	Attempt int
	ChildID string
}

// ChildDone is the end of a child instance, for its parent's step.
type ChildDone struct {
	Step    string
	Attempt int
	ChildID string
	Status  ordotype.Status
	Output  json.RawMessage
	Err     *journal.Error
}

// WaitArmed sets a receive step's task to come due when its wait times out,
// once the messages kept for it before it began to wait were looked at.
type WaitArmed struct {
	Step    string
	Attempt int
}

// ReceiveTask is the payload of a receive step's task once it is armed.
type ReceiveTask struct {
	Armed bool `json:"armed"`
}

// Admit runs a deferred instance: it got every slot it needs.
type Admit struct{}

// Deadline ends an instance that ran past its workflow timeout.
type Deadline struct{}

func (MessageReceived) command() {}
func (ChildStarted) command()    {}
func (ChildDone) command()       {}
func (Admit) command()           {}
func (WaitArmed) command()       {}
func (Deadline) command()        {}

// ParentTask is the payload of a QueueParent task.
type ParentTask struct {
	Parent  string `json:"parent"`
	Step    string `json:"step"`
	Attempt int    `json:"attempt"`
}

// CancelTask is the payload of a QueueCancel task.
type CancelTask struct {
	Child  string `json:"child"`
	Reason string `json:"reason,omitempty"`
}

// ChildTask is the payload of a workflow step's task: what to start.
type ChildTask struct {
	Workflow string          `json:"workflow"`
	Version  int             `json:"version,omitempty"`
	Input    json.RawMessage `json:"input,omitempty"`
}

// MessageQueue is the queue of the receive tasks that wait for a message
// name with a correlation key.
func MessageQueue(name, key string) string { return name + "\x1f" + key }

// ChildKey is the idempotency key a parent's workflow step starts its child
// with: starting it again (after a crash) finds the same child.
func ChildKey(parent, step string, attempt int) string {
	return "ordo.child:" + StepKey(parent, step, attempt)
}

// SlotGroups returns the slot groups an instance of def with this input
// must hold to run: one per concurrency key value (limit 1) and one for the
// workflow's maxConcurrent. The limit of a group is [SlotLimit].
func (d *decider) slotGroups() ([]string, error) {
	var groups []string
	if d.def.ConcurrencyKey != nil {
		v, err := d.def.ConcurrencyKey.EvalString(d.ctx, map[string]any{"input": decode(d.st.Input)})
		if err != nil {
			return nil, fmt.Errorf("concurrencyKey: %w", err)
		}
		groups = append(groups, d.def.Name+"/key/"+v)
	}
	if d.def.MaxConcurrent > 0 {
		groups = append(groups, d.def.Name+"/max")
	}
	return groups, nil
}

// SlotLimit returns how many instances may hold a slot of group at once.
func SlotLimit(def *definition.Workflow, group string) int {
	if group == def.Name+"/max" && def.MaxConcurrent > 0 {
		return def.MaxConcurrent
	}
	return 1
}

// running starts the work of an instance that may run: its workflow
// deadline, and its first steps.
func (d *decider) running() {
	if d.def.Timeout > 0 {
		d.tasks = append(d.tasks, NewTask{Kind: ordotype.TaskStep, Queue: QueueDeadline, DueAt: d.now.Add(d.def.Timeout)})
	}
	d.advance()
}

func (d *decider) admit() error {
	if d.st.Status != ordotype.StatusDeferred {
		return ErrStale
	}
	d.emit(&journal.Event{Type: journal.WorkflowAdmitted})
	d.running()
	return nil
}

func (d *decider) deadline() error {
	if !d.st.Status.Active() || d.st.Compensating {
		return ErrStale
	}
	d.failWorkflow(&journal.Error{Message: fmt.Sprintf("the workflow timed out after %s", d.def.Timeout), Code: "timeout"})
	return nil
}

func (d *decider) messageReceived(c MessageReceived) error {
	ss := d.stepState(c.Step)
	step := d.def.Step(c.Step)
	if d.st.Status.Terminal() || step == nil || step.Kind != definition.KindReceive ||
		ss.Attempt != c.Attempt || ss.Status != ordotype.StepWaiting {
		return ErrStale
	}
	for _, id := range d.st.Messages {
		if id == c.MessageID {
			return ErrStale // a duplicate of a message this instance had
		}
	}
	return d.stepDone(StepDone{Step: c.Step, Attempt: c.Attempt, Output: c.Payload, MessageID: c.MessageID})
}

func (d *decider) waitArmed(c WaitArmed) error {
	ss := d.stepState(c.Step)
	step := d.def.Step(c.Step)
	if d.st.Status.Terminal() || step == nil || step.Kind != definition.KindReceive ||
		ss.Attempt != c.Attempt || ss.Status != ordotype.StepWaiting {
		return ErrStale
	}
	payload, _ := json.Marshal(ReceiveTask{Armed: true})
	d.tasks = append(d.tasks, NewTask{
		Kind: ordotype.TaskReceive, Queue: MessageQueue(step.Receive.Message, ss.Key),
		Step: c.Step, Attempt: c.Attempt, Payload: payload, DueAt: ss.DueAt,
	})
	return nil
}

func (d *decider) childStarted(c ChildStarted) error {
	ss := d.stepState(c.Step)
	if d.st.Status.Terminal() || ss.Attempt != c.Attempt || !ss.Status.Active() || ss.Child != "" {
		return ErrStale
	}
	d.emit(&journal.Event{Type: journal.StepStarted, Step: c.Step, Attempt: c.Attempt, StartedAt: d.now, Child: c.ChildID})
	if !d.st.Status.Active() {
		// The parent was cancelled or failed meanwhile: cancel the child.
		d.cancelChild(c.ChildID, "the parent instance ended")
	}
	return nil
}

func (d *decider) childDone(c ChildDone) error {
	ss := d.stepState(c.Step)
	if d.st.Status.Terminal() || ss.Attempt != c.Attempt || ss.Child != c.ChildID || !ss.Status.Active() {
		return ErrStale
	}
	return d.stepDone(StepDone{Step: c.Step, Attempt: c.Attempt, Output: c.Output, Err: c.Err})
}

// cancelChildren cancels the children of the steps that wait for one.
func (d *decider) cancelChildren(reason string) {
	for _, s := range d.def.Steps {
		if ss := d.stepState(s.ID); ss.Child != "" && ss.Status.Active() {
			d.cancelChild(ss.Child, reason)
		}
	}
}

func (d *decider) cancelChild(child, reason string) {
	payload, _ := json.Marshal(CancelTask{Child: child, Reason: reason})
	d.tasks = append(d.tasks, NewTask{Kind: ordotype.TaskStep, Queue: QueueCancel, Payload: payload, DueAt: d.now})
}

// ended adds the work an instance's end creates: telling its parent, and
// freeing its slots. Decide calls it when a decision ends an instance.
func (d *decider) ended() {
	if d.st.ParentID != "" {
		payload, _ := json.Marshal(ParentTask{Parent: d.st.ParentID, Step: d.st.ParentStep, Attempt: d.st.ParentAttempt})
		d.tasks = append(d.tasks, NewTask{Kind: ordotype.TaskStep, Queue: QueueParent, Payload: payload, DueAt: d.now})
	}
	if len(d.st.Slots) > 0 {
		d.tasks = append(d.tasks, NewTask{Kind: ordotype.TaskStep, Queue: QueueRelease, DueAt: d.now})
	}
	d.cancelChildren("the parent instance ended")
}

// scheduleWait schedules a step that waits for something outside: its
// task, and the step.scheduled event carrying what it waits for.
func (d *decider) scheduleWait(step *definition.Step, attempt int, in json.RawMessage) {
	ev := &journal.Event{Type: journal.StepScheduled, Step: step.ID, Attempt: attempt, Input: in, DueAt: d.now, Waiting: true}
	task := NewTask{Kind: ordotype.TaskStep, Queue: QueueOf(step), Step: step.ID, Attempt: attempt, DueAt: d.now}
	switch step.Kind {
	case definition.KindTimer:
		ev.DueAt = d.timerDue(step)
		task.DueAt = ev.DueAt
	case definition.KindHuman:
		// Due never, unless the step has a timeout: then the task comes
		// due when it passes, and the engine fails the attempt with code
		// timeout if no one completed it.
		ev.DueAt, task.DueAt = Never, Never
		if step.Timeout > 0 {
			ev.DueAt, task.DueAt = d.now.Add(step.Timeout), d.now.Add(step.Timeout)
		}
	case definition.KindReceive:
		key := ""
		if step.Receive.Correlate != nil {
			v, err := step.Receive.Correlate.EvalString(d.ctx, d.celVars())
			if err != nil {
				d.emit(ev)
				d.failStep(step, attempt, time.Time{}, &journal.Error{Message: "correlate: " + err.Error(), Code: "correlate"})
				return
			}
			key = v
		}
		ev.Key = key
		ev.DueAt = Never
		if step.Receive.Timeout > 0 {
			ev.DueAt = d.now.Add(step.Receive.Timeout)
		}
		// The task is due at once: the engine first looks for a message
		// kept before the step began to wait, then arms it (WaitArmed) to
		// come due when the wait times out.
		task = NewTask{Kind: ordotype.TaskReceive, Queue: MessageQueue(step.Receive.Message, key), Step: step.ID, Attempt: attempt, DueAt: d.now}
	case definition.KindWorkflow:
		in := in
		if step.Child.Input != nil {
			v, err := step.Child.Input.Eval(d.ctx, d.celVars())
			if err != nil {
				d.emit(ev)
				d.failStep(step, attempt, time.Time{}, &journal.Error{Message: "workflow input: " + err.Error(), Code: "input"})
				return
			}
			in, _ = json.Marshal(v)
		}
		task.Payload, _ = json.Marshal(ChildTask{Workflow: step.Child.Name, Version: step.Child.Version, Input: in})
	}
	d.emit(ev)
	d.tasks = append(d.tasks, task)
}
