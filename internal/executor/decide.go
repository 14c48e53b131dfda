// Package executor decides what happens next in a workflow instance and runs
// the step handlers that do the work.
//
// [Decide] is the heart of it and a pure function: given a definition, an
// instance's state and a command (start, a step's result, an effect's
// outcome, resubmit, cancel) it returns the events to append and the tasks to
// create. It reads no clock, no database and no randomness of its own, so it
// is tested with plain table tests.
package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/ordotype"
)

// Command is what [Decide] reacts to.
type Command interface{ command() }

// Start starts a new instance.
type Start struct {
	ID             string
	Input          json.RawMessage
	IdempotencyKey string
	BusinessKey    string
	ParentID       string
	ParentStep     string // the parent's step that starts this child
	ParentAttempt  int
	Version        int    // the definition version the instance runs on
	TraceParent    string // W3C trace context the instance was started under
}

// StepDone is the result of one attempt of a step.
type StepDone struct {
	Step      string
	Attempt   int
	StartedAt time.Time
	Output    json.RawMessage
	State     json.RawMessage // nil: unchanged
	Effects   []Effect
	Err       *journal.Error // nil on success
	// MessageID is the message that completed a receive step.
	MessageID string
	// Task is the ID of the task whose result this is, when a worker or a
	// person sent it: it is journaled on the step.completed or step.failed.
	Task int64
}

// EffectDone is the outcome of one try of a side effect.
type EffectDone struct {
	Step    string
	Index   int
	Type    string
	Key     string
	Attempt int             // the effect's own try number, from 1
	Payload json.RawMessage // the effect task's payload, to try again
	Err     *journal.Error
}

// Resubmit restarts a parked or failed instance from a step (default: the
// steps that failed), optionally with a new workflow input.
type Resubmit struct {
	From   string
	Input  json.RawMessage
	Reason string
}

// Cancel cancels an instance that has not ended.
type Cancel struct{ Reason string }

func (Start) command()      {}
func (StepDone) command()   {}
func (EffectDone) command() {}
func (Resubmit) command()   {}
func (Cancel) command()     {}

// Effect is a side effect returned by a step handler, as data.
type Effect struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// EffectTask is the payload of an effect task.
type EffectTask struct {
	Type        string          `json:"type"`
	Payload     json.RawMessage `json:"payload,omitempty"`
	Key         string          `json:"key"`
	Index       int             `json:"index"`
	StepAttempt int             `json:"stepAttempt"`
}

// NewTask is a task a decision creates.
type NewTask struct {
	Kind    ordotype.TaskKind
	Queue   string
	Step    string
	Attempt int
	Payload json.RawMessage
	DueAt   time.Time
}

// Queues of built-in step kinds.
const (
	QueueHTTP     = "ordo.http"
	QueueTimer    = "ordo.timer"
	QueueHuman    = "ordo.human"
	QueueReceive  = "ordo.receive"
	QueueWorkflow = "ordo.workflow"
)

// Never is the due time of a wait without a deadline: a task that is never
// due on its own and ends only when something outside completes it.
var Never = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)

// Waits reports whether a step of this kind waits for something outside
// the engine (a time, a person, a message, a child workflow) rather than
// runs: its instance is waiting while it does.
func Waits(k definition.StepKind) bool {
	switch k {
	case definition.KindTimer, definition.KindHuman, definition.KindReceive, definition.KindWorkflow:
		return true
	}
	return false
}

// Decision is the outcome of [Decide].
type Decision struct {
	// Events to append, numbered from the input state's Seq+1.
	Events []*journal.Event
	// Tasks to create.
	Tasks []NewTask
	// State is the input state with Events applied (a copy; the input is
	// not modified).
	State *journal.State
	// Cancel are tasks of the instance to delete: the timeout tasks of
	// deliveries that ended.
	Cancel []TaskMatch
}

// TaskMatch names the instance's tasks of one queue, step and attempt.
type TaskMatch struct {
	Queue   string
	Step    string
	Attempt int
}

// ErrStale is returned for a step result or effect outcome that no longer
// matches the instance (an old attempt, a step that was reset): it is dropped.
var ErrStale = fmt.Errorf("stale result: %w", ordotype.ErrDuplicate)

// Decide computes what cmd does to an instance in state st (nil for Start).
// now is the time stamped on events; rnd returns values in [0,1) for retry
// jitter. Errors wrapping ordotype.ErrInvalid mean the command is not allowed
// in this state; ErrStale means it is out of date.
func Decide(ctx context.Context, def *definition.Workflow, st *journal.State, cmd Command, now time.Time, rnd func() float64) (*Decision, error) {
	d := &decider{ctx: ctx, def: def, now: now, rnd: rnd}
	if st == nil {
		d.st = &journal.State{}
	} else {
		d.st = st.Clone()
	}
	wasTerminal := d.st.Status.Terminal()
	var err error
	switch c := cmd.(type) {
	case Start:
		err = d.start(c)
	case MessageReceived:
		err = d.messageReceived(c)
	case ChildStarted:
		err = d.childStarted(c)
	case ChildDone:
		err = d.childDone(c)
	case WaitArmed:
		err = d.waitArmed(c)
	case Admit:
		err = d.admit()
	case Deadline:
		err = d.deadline()
	case StepDone:
		err = d.stepDone(c)
	case EffectDone:
		err = d.effectDone(c)
	case Resubmit:
		err = d.resubmit(c)
	case Cancel:
		err = d.cancel(c)
	case StepClaimed:
		err = d.stepClaimed(c)
	case StepRejected:
		err = d.stepRejected(c)
	default:
		err = fmt.Errorf("executor: unknown command %T", cmd)
	}
	if err != nil {
		return nil, err
	}
	if !wasTerminal && d.st.Status.Terminal() {
		d.ended()
	}
	return &Decision{Events: d.events, Tasks: d.tasks, State: d.st, Cancel: d.cancels}, nil
}

type decider struct {
	ctx     context.Context
	def     *definition.Workflow
	st      *journal.State
	now     time.Time
	rnd     func() float64
	events  []*journal.Event
	tasks   []NewTask
	cancels []TaskMatch
	vars    map[string]any // CEL variables, built lazily and reset on change
}

func (d *decider) emit(e *journal.Event) {
	e.Seq = d.st.Seq + 1
	e.Time = d.now
	if err := journal.Apply(d.st, e); err != nil {
		// Only a sequence or type mistake in this package can cause this.
		panic(err)
	}
	d.events = append(d.events, e)
	d.vars = nil
}

func (d *decider) status(id string) ordotype.StepStatus {
	if ss, ok := d.st.Steps[id]; ok {
		return ss.Status
	}
	return ordotype.StepPending
}

func (d *decider) stepState(id string) journal.StepState {
	if ss, ok := d.st.Steps[id]; ok {
		return *ss
	}
	return journal.StepState{Status: ordotype.StepPending}
}

func (d *decider) start(c Start) error {
	if d.st.Seq != 0 {
		return fmt.Errorf("instance %s already started: %w", c.ID, ordotype.ErrInvalid)
	}
	d.st.ID = c.ID
	d.st.Input = c.Input
	slots, err := d.slotGroups()
	if err != nil {
		return fmt.Errorf("instance of %s: %w: %w", d.def.Name, err, ordotype.ErrInvalid)
	}
	d.emit(&journal.Event{
		Type:           journal.WorkflowStarted,
		Workflow:       d.def.Name,
		Version:        c.Version,
		IdempotencyKey: c.IdempotencyKey,
		BusinessKey:    c.BusinessKey,
		ParentID:       c.ParentID,
		ParentStep:     c.ParentStep,
		ParentAttempt:  c.ParentAttempt,
		Input:          c.Input,
		Slots:          slots,
		TraceParent:    c.TraceParent,
	})
	if len(slots) > 0 {
		// Deferred until it holds a slot of every group; the oldest
		// instance of its first group is admitted first.
		d.emit(&journal.Event{Type: journal.WorkflowDeferred})
		d.tasks = append(d.tasks, NewTask{Kind: ordotype.TaskAdmit, Queue: slots[0], DueAt: d.now})
		return nil
	}
	d.running()
	return nil
}

func (d *decider) stepDone(c StepDone) error {
	ss := d.stepState(c.Step)
	if d.st.Status.Terminal() || ss.Attempt != c.Attempt || !ss.Status.Active() {
		return ErrStale
	}
	step := d.def.Step(c.Step)
	if step == nil {
		return fmt.Errorf("step %q is not in %s: %w", c.Step, d.def.Name, ErrStale)
	}
	// A step run in-process has no step.started event of its own: the
	// attempt's start time travels in its outcome's event. (A task taken by
	// a worker from a queue is journaled as started when it is taken.)
	startedAt := c.StartedAt
	if ss.Status == ordotype.StepRunning {
		startedAt = time.Time{}
		if step.Timeout > 0 {
			// The delivery ends: its timeout task has nothing left to do.
			d.cancels = append(d.cancels, TaskMatch{Queue: QueueTimeout, Step: c.Step, Attempt: c.Attempt})
		}
	}
	// The outcome's event is the first this command emits.
	defer d.tagTask(len(d.events), c.Task)
	if c.Err == nil && step.Next != "" && d.st.Loops[step.ID] >= step.MaxIterations {
		c.Err = &journal.Error{
			Message: fmt.Sprintf("step %s went back to %s %d times, the most its maxIterations allows", step.ID, step.Next, step.MaxIterations),
			Code:    "max_iterations",
		}
	}
	if c.Err != nil {
		d.failStep(step, c.Attempt, startedAt, c.Err)
	} else {
		d.emit(&journal.Event{
			Type: journal.StepCompleted, Step: c.Step, Attempt: c.Attempt, StartedAt: startedAt,
			Output: c.Output, State: c.State, Effects: len(c.Effects), MessageID: c.MessageID,
		})
		for i, eff := range c.Effects {
			key := EffectKey(d.st.ID, c.Step, c.Attempt, i)
			d.emit(&journal.Event{
				Type: journal.EffectScheduled, Step: c.Step, Attempt: c.Attempt,
				Index: i, EffectType: eff.Type, EffectKey: key, EffectAttempt: 1,
			})
			payload, _ := json.Marshal(EffectTask{Type: eff.Type, Payload: eff.Payload, Key: key, Index: i, StepAttempt: c.Attempt})
			d.tasks = append(d.tasks, NewTask{
				Kind: ordotype.TaskEffect, Queue: eff.Type, Step: c.Step, Attempt: 1,
				Payload: payload, DueAt: d.now,
			})
		}
		d.completed(step, c.Output)
		return nil
	}
	d.advance()
	return nil
}

// tagTask sets the task ID of the event at index i, the step.completed or
// step.failed of a task's result.
func (d *decider) tagTask(i int, task int64) {
	if task != 0 && i < len(d.events) {
		d.events[i].Task = task
	}
}

// completed moves on after a step completed: a compensation marks its step
// compensated and the saga goes on; a back-edge goes back to its earlier
// step; any other step lets the steps after it run.
func (d *decider) completed(step *definition.Step, output json.RawMessage) {
	switch {
	case step.Index < 0:
		d.emit(&journal.Event{Type: journal.StepCompensated, Step: strings.TrimSuffix(step.ID, compensateSuffix)})
	case step.Next != "" && d.st.Status.Active() && !d.st.Compensating:
		d.loop(step, output)
	}
	d.advance()
}

// loop takes step's back-edge: the steps from its Next on that have run are
// reset, and Next runs again with step's output as its input.
func (d *decider) loop(step *definition.Step, output json.RawMessage) {
	var reset []string
	for _, id := range d.def.Reachable(step.Next) {
		if d.status(id) != ordotype.StepPending {
			reset = append(reset, id)
		}
	}
	d.emit(&journal.Event{Type: journal.WorkflowLooped, Step: step.ID, Iteration: d.st.Loops[step.ID] + 1, Reset: reset})
	d.schedule(d.def.Step(step.Next), output)
}

func (d *decider) effectDone(c EffectDone) error {
	ss := d.stepState(c.Step)
	if ss.PendingEffects <= 0 {
		return ErrStale
	}
	ev := &journal.Event{
		Step: c.Step, Attempt: ss.Attempt, Index: c.Index, EffectType: c.Type,
		EffectKey: c.Key, EffectAttempt: c.Attempt, Error: c.Err,
	}
	if c.Err == nil {
		ev.Type = journal.EffectCompleted
		d.emit(ev)
		d.advance()
		return nil
	}
	ev.Type = journal.EffectFailed
	step := d.def.Step(c.Step)
	if step != nil && c.Err.Retryable && c.Attempt < step.Retry.MaxAttempts {
		ev.Retrying = true
		d.emit(ev)
		d.tasks = append(d.tasks, NewTask{
			Kind: ordotype.TaskEffect, Queue: c.Type, Step: c.Step, Attempt: c.Attempt + 1,
			Payload: c.Payload, DueAt: d.now.Add(step.Retry.Backoff(c.Attempt+1, d.random())),
		})
		return nil
	}
	d.emit(ev)
	if step != nil && step.WaitEffects && d.st.Status.Active() {
		err := *c.Err
		err.Message = fmt.Sprintf("side effect %d (%s) failed: %s", c.Index, c.Type, c.Err.Message)
		err.Retryable = false
		err.Step = c.Step
		d.failAfterRetries(step, &err)
	}
	d.advance()
	return nil
}

func (d *decider) resubmit(c Resubmit) error {
	if d.st.Status != ordotype.StatusReview && d.st.Status != ordotype.StatusFailed {
		return fmt.Errorf("instance %s is %s; only instances in review or failed can be resubmitted: %w", d.st.ID, d.st.Status, ordotype.ErrInvalid)
	}
	if d.st.Compensating {
		return d.resubmitCompensation(c)
	}
	var from []string
	if c.From != "" {
		if d.def.Step(c.From) == nil {
			return fmt.Errorf("resubmit: unknown step %q in %s: %w", c.From, d.def.Name, ordotype.ErrInvalid)
		}
		from = []string{c.From}
	} else {
		for _, s := range d.def.Steps {
			if d.status(s.ID) == ordotype.StepFailed {
				from = append(from, s.ID)
			}
		}
		if len(from) == 0 {
			return fmt.Errorf("resubmit: instance %s has no failed step; name one with From: %w", d.st.ID, ordotype.ErrInvalid)
		}
	}
	// Reset the steps and everything after them that has run.
	var reset []string
	seen := map[string]bool{}
	var walk func(id string)
	walk = func(id string) {
		if seen[id] {
			return
		}
		seen[id] = true
		if d.status(id) != ordotype.StepPending {
			reset = append(reset, id)
		}
		for _, dep := range d.def.Step(id).Dependents {
			walk(dep)
		}
	}
	for _, id := range from {
		walk(id)
	}
	slices.SortFunc(reset, func(a, b string) int { return d.def.Step(a).Index - d.def.Step(b).Index })
	d.emit(&journal.Event{Type: journal.WorkflowResubmitted, Reset: reset, Input: c.Input, Reason: c.Reason})
	// Steps on an error path are not started by advance: start them here.
	for _, id := range from {
		if s := d.def.Step(id); s.ErrorPathOnly && len(s.After) == 0 {
			d.schedule(s, d.inputFor(s))
		}
	}
	d.advance()
	return nil
}

func (d *decider) cancel(c Cancel) error {
	if d.st.Status.Terminal() {
		return fmt.Errorf("instance %s is already %s: %w", d.st.ID, d.st.Status, ordotype.ErrInvalid)
	}
	reason := c.Reason
	if reason == "" {
		reason = "cancelled"
	}
	if d.def.OnFailure == definition.FailureCompensate && d.st.Status.Active() && !d.st.Compensating && d.hasCompensations() {
		// Undo what was done first; the instance ends cancelled.
		d.startCompensation(&journal.Error{Message: reason, Code: codeCancelled})
		return nil
	}
	d.emit(&journal.Event{Type: journal.WorkflowCancelled, Reason: reason})
	return nil
}

// failStep handles a failed attempt: retry it, or give up.
func (d *decider) failStep(step *definition.Step, attempt int, startedAt time.Time, e *journal.Error) {
	e.Step = step.ID
	d.emit(&journal.Event{Type: journal.StepFailed, Step: step.ID, Attempt: attempt, StartedAt: startedAt, Error: e})
	ss := d.stepState(step.ID)
	tries := attempt - ss.FirstAttempt + 1
	if e.Retryable && tries < step.Retry.MaxAttempts && d.st.Status.Active() {
		due := d.now.Add(step.Retry.Backoff(tries+1, d.random()))
		d.emit(&journal.Event{Type: journal.StepRetrying, Step: step.ID, Attempt: attempt + 1, DueAt: due, Input: ss.Input, Error: e})
		taskDue := due
		if step.Kind == definition.KindHuman {
			// A human task comes due only when its timeout passes.
			taskDue = Never
			if step.Timeout > 0 {
				taskDue = due.Add(step.Timeout)
			}
		}
		d.addStepTask(step, attempt+1, taskDue)
		return
	}
	d.failAfterRetries(step, e)
}

// failAfterRetries takes the first of the step's error routes that matches
// the error, or fails the workflow.
func (d *decider) failAfterRetries(step *definition.Step, e *journal.Error) {
	if !d.st.Status.Active() {
		return
	}
	if step.Index < 0 {
		// A compensation failed for good: an operator decides.
		d.emit(&journal.Event{Type: journal.WorkflowParked, Error: e})
		return
	}
	if d.st.Compensating {
		return // the saga goes on
	}
	if e.Code == codeTimeout && len(step.OnTimeout) > 0 {
		in, _ := json.Marshal(map[string]any{"error": e, "input": d.stepState(step.ID).Input})
		for _, id := range step.OnTimeout {
			if t := d.def.Step(id); t != nil && d.status(id) == ordotype.StepPending {
				d.schedule(t, in)
			}
		}
		return
	}
	if route := step.ErrorRoute(e.Code); route != nil {
		if route.Compensate {
			d.compensate(e)
			return
		}
		in, _ := json.Marshal(map[string]any{"error": e, "input": d.stepState(step.ID).Input})
		for _, id := range route.Next {
			if t := d.def.Step(id); t != nil && d.status(id) == ordotype.StepPending {
				d.schedule(t, in)
			}
		}
		return
	}
	d.failWorkflow(e)
}

func (d *decider) random() float64 {
	if d.rnd == nil {
		return 0.5
	}
	return d.rnd()
}

// advance schedules or skips every step whose dependencies are done, then
// completes the workflow when nothing is left to do. Steps are in
// topological order, so one pass sees the effect of every skip it makes.
func (d *decider) advance() {
	if !d.st.Status.Active() {
		return
	}
	if d.st.Compensating {
		d.continueCompensation()
		return
	}
	for _, step := range d.def.Steps {
		if d.status(step.ID) != ordotype.StepPending {
			continue
		}
		if step.ErrorPathOnly && len(step.After) == 0 {
			continue // started only by an error path
		}
		if !d.ready(step) {
			continue
		}
		in := d.inputFor(step)
		if step.When != nil {
			ok, err := step.When.EvalBool(d.ctx, d.celVars())
			if err != nil {
				d.emit(&journal.Event{Type: journal.StepScheduled, Step: step.ID, Attempt: d.stepState(step.ID).Attempt + 1, Input: in, DueAt: d.now})
				d.failStep(step, d.stepState(step.ID).Attempt, time.Time{}, &journal.Error{Message: "when: " + err.Error(), Code: "when"})
				if !d.st.Status.Active() {
					return
				}
				continue
			}
			if !ok {
				d.emit(&journal.Event{Type: journal.StepSkipped, Step: step.ID, Input: in, Reason: "when: " + step.When.Source + " is false"})
				continue
			}
		}
		d.schedule(step, in)
	}
	d.maybeComplete()
}

func (d *decider) ready(step *definition.Step) bool {
	for _, dep := range step.After {
		ds := d.stepState(dep)
		if !ds.Status.Done() {
			return false
		}
		if s := d.def.Step(dep); s != nil && s.WaitEffects && ds.PendingEffects > 0 {
			return false
		}
	}
	return true
}

func (d *decider) schedule(step *definition.Step, in json.RawMessage) {
	attempt := d.stepState(step.ID).Attempt + 1
	if Waits(step.Kind) {
		// A step that waits makes its instance wait, if nothing else runs.
		d.scheduleWait(step, attempt, in)
		return
	}
	d.emit(&journal.Event{Type: journal.StepScheduled, Step: step.ID, Attempt: attempt, Input: in, DueAt: d.now})
	d.addStepTask(step, attempt, d.now)
}

func (d *decider) timerDue(step *definition.Step) time.Time {
	if step.Timer.Until != nil {
		v, err := step.Timer.Until.Eval(d.ctx, d.celVars())
		if err == nil {
			if t, ok := toTime(v); ok {
				return t
			}
		}
		// An unusable deadline fires at once; the step's handler reports it.
		return d.now
	}
	return d.now.Add(step.Timer.Duration)
}

func toTime(v any) (time.Time, bool) {
	switch t := v.(type) {
	case time.Time:
		return t, true
	case string:
		tt, err := time.Parse(time.RFC3339Nano, t)
		return tt, err == nil
	}
	return time.Time{}, false
}

func (d *decider) addStepTask(step *definition.Step, attempt int, due time.Time) {
	d.tasks = append(d.tasks, NewTask{
		Kind: ordotype.TaskStep, Queue: QueueOf(step), Step: step.ID, Attempt: attempt, DueAt: due,
	})
}

// QueueOf returns the queue a step's tasks go to: the Go handler or worker
// queue of a task step, or a built-in queue.
func QueueOf(step *definition.Step) string {
	switch step.Kind {
	case definition.KindHTTP:
		return QueueHTTP
	case definition.KindTimer:
		return QueueTimer
	case definition.KindHuman:
		return QueueHuman
	case definition.KindReceive:
		return QueueReceive
	case definition.KindWorkflow:
		return QueueWorkflow
	}
	return step.HandlerKey()
}

// inputFor returns a step's input: the workflow input for a first step, the
// output of its one dependency, or an object of its dependencies' outputs
// keyed by step id for a join. A skipped step passes its own input on.
func (d *decider) inputFor(step *definition.Step) json.RawMessage {
	switch len(step.After) {
	case 0:
		return d.st.Input
	case 1:
		return d.outputOf(step.After[0])
	}
	m := make(map[string]json.RawMessage, len(step.After))
	for _, dep := range step.After {
		if out := d.outputOf(dep); out != nil {
			m[dep] = out
		}
	}
	b, _ := json.Marshal(m)
	return b
}

func (d *decider) outputOf(id string) json.RawMessage {
	ss := d.stepState(id)
	if ss.Status == ordotype.StepSkipped {
		return ss.Input
	}
	return ss.Output
}

func (d *decider) maybeComplete() {
	if !d.st.Status.Active() || d.st.PendingEffects > 0 {
		return
	}
	for _, ss := range d.st.Steps {
		switch ss.Status {
		case ordotype.StepScheduled, ordotype.StepRunning, ordotype.StepWaiting:
			return
		}
	}
	d.emit(&journal.Event{Type: journal.WorkflowCompleted, Output: d.workflowOutput()})
}

// workflowOutput is the output of the last step when the graph ends in one,
// or an object of the outputs of every completed last step.
func (d *decider) workflowOutput() json.RawMessage {
	var sinks []string
	for _, s := range d.def.Steps {
		if len(s.Dependents) == 0 && d.status(s.ID) == ordotype.StepCompleted {
			sinks = append(sinks, s.ID)
		}
	}
	switch len(sinks) {
	case 0:
		return nil
	case 1:
		return d.stepState(sinks[0]).Output
	}
	m := make(map[string]json.RawMessage, len(sinks))
	for _, id := range sinks {
		m[id] = d.stepState(id).Output
	}
	b, _ := json.Marshal(m)
	return b
}

func (d *decider) celVars() map[string]any {
	if d.vars != nil {
		return d.vars
	}
	outputs := map[string]any{}
	for id, ss := range d.st.Steps {
		if ss.Status == ordotype.StepCompleted {
			outputs[id] = decode(ss.Output)
		}
	}
	d.vars = map[string]any{"input": decode(d.st.Input), "state": decode(d.st.Data), "outputs": outputs}
	return d.vars
}

func decode(raw json.RawMessage) any { return DecodeJSON(raw) }

// DecodeJSON decodes JSON for CEL: whole numbers become int64 (so that
// `input.n % 2` and `input.qty > 3` work as written), other numbers float64.
// It returns nil for empty or invalid JSON.
func DecodeJSON(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil
	}
	return numbers(v)
}

func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// EffectKey is the idempotency key of a side effect: stable across its
// retries, unique to one attempt of one step of one instance.
func EffectKey(instance, step string, attempt, index int) string {
	return instance + "/" + step + "/" + strconv.Itoa(attempt) + "/" + strconv.Itoa(index)
}

// StepKey is the idempotency key of one attempt of a step.
func StepKey(instance, step string, attempt int) string {
	return instance + "/" + step + "/" + strconv.Itoa(attempt)
}

// IsStale reports whether err says a result was out of date.
func IsStale(err error) bool { return errors.Is(err, ErrStale) }
