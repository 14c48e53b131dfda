package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/internal/executor"
	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// This file holds the engine's side of long-running flows: messages for
// receive steps, child workflows, deferred instances and workflow
// deadlines. Each is driven by tasks in the store (see the Queue constants
// of package executor), so a crash at any point leaves work that a process
// picks up again.

// Defaults of the flows.
const (
	// DefaultMessageTTL is how long a message waits for a receive step
	// when the sender does not say.
	DefaultMessageTTL = 24 * time.Hour
	// parkLease is how long a deferred instance's admission task rests
	// between two looks at its slots; an ended instance admits the next
	// one at once, so this only bounds the wait after a crash.
	parkLease = time.Minute
	// expireBatch caps the messages one expiry pass deletes.
	expireBatch = 1000
)

// flowMetrics counts what the flows do.
type flowMetrics struct {
	messagesSent      atomic.Int64
	messagesDelivered atomic.Int64
	messagesDropped   atomic.Int64
	childrenStarted   atomic.Int64
	admitted          atomic.Int64
}

// SendParams are the parameters of [Engine.Send].
type SendParams struct {
	// Name is the message's name; Key its correlation key.
	Name string
	Key  string
	// MessageID identifies the message: a second message with the same
	// name and ID is a duplicate. A new ID is made when empty.
	MessageID string
	Payload   json.RawMessage
	// TTL is how long the message waits for a receive step; 0 means
	// DefaultMessageTTL.
	TTL time.Duration
}

// SendResult is what [Engine.Send] did.
type SendResult struct {
	MessageID string
	// Duplicate is set when the message was sent before: nothing was done.
	Duplicate bool
	// DeliveredTo are the instances whose receive step took the message;
	// empty when it is kept until one waits for it (or it expires).
	DeliveredTo []string
}

// Send delivers a message to the instances waiting for it, or keeps it
// until one does. A message goes to exactly one waiting instance (the one
// that has waited longest) unless the receive steps say broadcast.
func (e *Engine) Send(ctx context.Context, p SendParams) (*SendResult, error) {
	if e.stopping.Load() {
		return nil, ordotype.ErrClosed
	}
	if p.Name == "" {
		return nil, fmt.Errorf("send: a message needs a name: %w", ordotype.ErrInvalid)
	}
	if p.TTL < 0 {
		return nil, fmt.Errorf("send: negative TTL %s: %w", p.TTL, ordotype.ErrInvalid)
	}
	if p.TTL == 0 {
		p.TTL = DefaultMessageTTL
	}
	if p.MessageID == "" {
		p.MessageID = uuid.NewString()
	}
	if len(p.Payload) == 0 {
		p.Payload = json.RawMessage("{}")
	}
	if !json.Valid(p.Payload) {
		return nil, fmt.Errorf("send: the payload is not valid JSON: %w", ordotype.ErrInvalid)
	}
	now := e.clock.Now().UTC()
	msg, err := e.store.PutMessage(ctx, &ordostore.Message{
		Name: p.Name, Key: p.Key, MessageID: p.MessageID, Payload: p.Payload,
		CreatedAt: now, ExpiresAt: now.Add(p.TTL),
	})
	if errors.Is(err, ordotype.ErrAlreadyExists) {
		return &SendResult{MessageID: p.MessageID, Duplicate: true}, nil
	}
	if err != nil {
		return nil, err
	}
	e.fm.messagesSent.Add(1)
	to, err := e.deliver(ctx, msg)
	if err != nil {
		return nil, err
	}
	return &SendResult{MessageID: p.MessageID, DeliveredTo: to}, nil
}

// deliver offers a kept message to the receive steps waiting for it, the
// oldest wait first, and returns the instances that took it.
func (e *Engine) deliver(ctx context.Context, msg *ordostore.Message) ([]string, error) {
	queue := executor.MessageQueue(msg.Name, msg.Key)
	var to []string
	seen := map[int64]bool{}
	// A waiter's task is replaced when it is armed: a task that is gone
	// sends us back to the list, where its successor is.
	for range 100 {
		waiters, err := e.store.ListTasks(ctx, &ordostore.ListTasksParams{
			Kinds: []ordotype.TaskKind{ordotype.TaskReceive}, Queues: []string{queue}, Limit: 100,
		})
		if err != nil {
			return to, err
		}
		again := false
		for _, w := range waiters {
			if seen[w.ID] {
				continue
			}
			seen[w.ID] = true
			took, broadcast, err := e.offer(ctx, msg, w)
			if err != nil {
				return to, err
			}
			if !took {
				again = true
				continue
			}
			to = append(to, w.InstanceID)
			if !broadcast {
				return to, nil
			}
		}
		if !again {
			return to, nil
		}
	}
	return to, nil
}

// offer gives a message to one waiting receive task. took is false when the
// task, or the message, was taken first by someone else.
func (e *Engine) offer(ctx context.Context, msg *ordostore.Message, w *ordostore.Task) (took, broadcast bool, err error) {
	def, st, err := e.load(ctx, w.InstanceID, true)
	if errors.Is(err, ordotype.ErrNotFound) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	step := def.Step(w.StepID)
	if step == nil || step.Receive == nil {
		return false, false, nil
	}
	broadcast = step.Receive.Broadcast
	var consume *ordostore.ConsumeRef
	if !broadcast {
		consume = &ordostore.ConsumeRef{ID: msg.ID, By: w.InstanceID}
	}
	cmd := executor.MessageReceived{Step: w.StepID, Attempt: w.Attempt, MessageID: msg.MessageID, Payload: msg.Payload}
	_, stale, err := e.applyWith(ctx, def, st, cmd, &ordostore.TaskRef{ID: w.ID, Claim: w.Claim}, consume)
	if err != nil {
		if errors.Is(err, ordotype.ErrDuplicate) {
			return false, broadcast, nil
		}
		return false, broadcast, err
	}
	if stale {
		return false, broadcast, nil
	}
	e.fm.messagesDelivered.Add(1)
	return true, broadcast, nil
}

// runReceive runs a receive step's task: at first, it looks for a message
// kept before the step began to wait and arms the task; armed, it comes due
// when the wait times out.
func (e *Engine) runReceive(ctx context.Context, t *ordostore.Task) {
	ref := &ordostore.TaskRef{ID: t.ID, Claim: t.Claim}
	var rt executor.ReceiveTask
	_ = json.Unmarshal(t.Payload, &rt)
	def, st, err := e.load(ctx, t.InstanceID, true)
	if err != nil {
		e.log.ErrorContext(ctx, "loading instance for a receive step", logInstance, t.InstanceID, logTask, t.ID, "error", err)
		return
	}
	if rt.Armed {
		timeout := time.Duration(0)
		if s := def.Step(t.StepID); s != nil && s.Receive != nil {
			timeout = s.Receive.Timeout
		}
		if timeout == 0 {
			// A wait without a deadline never times out: leave the task.
			until := executor.Never
			if _, err := e.store.ExtendLeases(ctx, &ordostore.ExtendLeasesParams{Owner: e.node, IDs: []int64{t.ID}, Until: until}); err != nil {
				e.log.ErrorContext(ctx, "resting a receive step", logInstance, t.InstanceID, "error", err)
			}
			return
		}
		cmd := executor.StepDone{Step: t.StepID, Attempt: t.Attempt, Err: &journal.Error{
			Message: fmt.Sprintf("no message came within %s", timeout), Code: "timeout",
		}}
		e.applyLogged(ctx, def, st, cmd, ref)
		return
	}
	name, key, _ := strings.Cut(t.Queue, "\x1f")
	msgs, err := e.store.ListMessages(ctx, &ordostore.ListMessagesParams{Name: name, Key: key, Now: e.clock.Now().UTC()})
	if err != nil {
		e.log.ErrorContext(ctx, "looking for kept messages", logInstance, t.InstanceID, logStep, t.StepID, "error", err)
		return
	}
	for _, m := range msgs {
		took, _, err := e.offer(ctx, m, t)
		if err != nil {
			e.log.ErrorContext(ctx, "delivering a kept message", logInstance, t.InstanceID, logStep, t.StepID, "error", err)
			return
		}
		if took {
			return
		}
	}
	e.applyLogged(ctx, def, st, executor.WaitArmed{Step: t.StepID, Attempt: t.Attempt}, ref)
}

// expireMessages drops the messages no receive step took in time.
func (e *Engine) expireMessages(ctx context.Context) {
	for {
		dropped, deleted, err := e.store.ExpireMessages(ctx, e.clock.Now().UTC(), expireBatch)
		if err != nil {
			if !errors.Is(err, ordotype.ErrClosed) {
				e.log.ErrorContext(ctx, "expiring messages", "error", err)
			}
			return
		}
		for _, m := range dropped {
			e.fm.messagesDropped.Add(1)
			e.log.WarnContext(ctx, "message expired before a receive step took it",
				"ordo.message.name", m.Name, "ordo.message.key", m.Key, "ordo.message.id", m.MessageID)
		}
		if deleted < expireBatch {
			return
		}
	}
}

// controlQueues are the step-task queues of the engine's own work for
// long-running flows, run by nodes with the executor role.
var controlQueues = []string{executor.QueueWorkflow, executor.QueueParent, executor.QueueCancel, executor.QueueRelease, executor.QueueDeadline, executor.QueueHuman, executor.QueueTimeout}

// control returns the engine's own handler of a step task's queue, if the
// queue is one of the engine's.
func (e *Engine) control(queue string) func(context.Context, *ordostore.Task) {
	switch queue {
	case executor.QueueWorkflow:
		return e.runChild
	case executor.QueueParent:
		return e.runParent
	case executor.QueueCancel:
		return e.runCancelChild
	case executor.QueueRelease:
		return e.runRelease
	case executor.QueueDeadline:
		return e.runDeadline
	case executor.QueueHuman:
		return e.runHumanTimeout
	case executor.QueueTimeout:
		return e.runStepTimeout
	}
	return nil
}

// runHumanTimeout runs a human task that came due: its step's timeout
// passed with no one completing it (a human task without a timeout is
// never due). The step fails with code timeout, not retried (a new task
// would wait for the same people): its onTimeout path, else an onError
// route, decides what follows, else the workflow fails. A person's
// completion that comes after is refused: the task is done.
func (e *Engine) runHumanTimeout(ctx context.Context, t *ordostore.Task) {
	def, st, err := e.load(ctx, t.InstanceID, true)
	if err != nil {
		e.log.ErrorContext(ctx, "loading instance for a human task's timeout", logInstance, t.InstanceID, logTask, t.ID, "error", err)
		return
	}
	step := def.Step(t.StepID)
	if step == nil || step.Timeout <= 0 || !runnable(st, t) {
		e.drop(ctx, def, st, t)
		return
	}
	e.failTimedOut(ctx, def, st, t, fmt.Sprintf("no one completed the human task within the step's timeout of %s", step.Timeout), false)
}

// runStepTimeout runs when a worker's delivery of a step comes to the
// step's timeout (the task is made when the worker takes the step). If the
// delivery is still running, it fails as one whose worker ran past the
// timeout fails when it calls again (timeOut): a worker that went silent,
// with no other polling its queue, does not hold the instance forever. The
// worker's task is completed with it. If the step has finished, or a later
// delivery started (which has its own), there is nothing to do.
func (e *Engine) runStepTimeout(ctx context.Context, t *ordostore.Task) {
	def, st, err := e.load(ctx, t.InstanceID, true)
	if err != nil {
		e.log.ErrorContext(ctx, "loading instance for a step's timeout", logInstance, t.InstanceID, logTask, t.ID, "error", err)
		return
	}
	step := def.Step(t.StepID)
	ss := st.Steps[t.StepID]
	if step == nil || step.Timeout <= 0 || ss == nil || ss.Attempt != t.Attempt || ss.Status != ordotype.StepRunning ||
		ss.StartedAt.IsZero() || e.clock.Now().Before(ss.StartedAt.Add(step.Timeout)) {
		e.drop(ctx, def, st, t)
		return
	}
	// Fail the attempt by completing the worker's task, so that it is not
	// delivered again. The failure of a running delivery cancels this task
	// in the same transition (Transition.Cancel); if it does not apply (a
	// result or a new delivery came first), this task runs again when its
	// lease ends and finds nothing to do.
	tasks, err := e.store.ListTasks(ctx, &ordostore.ListTasksParams{
		Kinds: []ordotype.TaskKind{ordotype.TaskStep}, InstanceID: t.InstanceID, Limit: 1000,
	})
	if err != nil {
		e.log.ErrorContext(ctx, "listing an instance's tasks for a step's timeout", logInstance, t.InstanceID, logTask, t.ID, "error", err)
		return // the lease runs out and the task is run again
	}
	target := t
	for _, wt := range tasks {
		if wt.StepID == t.StepID && wt.Attempt == t.Attempt && taskKind(wt) == TaskKindTask {
			target = wt
			break
		}
	}
	e.timeOut(ctx, def, st, target, step)
}

// runChild starts the child instance of a workflow step. The child's
// idempotency key comes from the parent's step and attempt, so a task run
// again after a crash finds the child it started.
func (e *Engine) runChild(ctx context.Context, t *ordostore.Task) {
	ref := &ordostore.TaskRef{ID: t.ID, Claim: t.Claim}
	def, st, err := e.load(ctx, t.InstanceID, true)
	if err != nil {
		e.log.ErrorContext(ctx, "loading instance for a child workflow", logInstance, t.InstanceID, logTask, t.ID, "error", err)
		return
	}
	if !runnable(st, t) {
		e.drop(ctx, def, st, t)
		return
	}
	var ct executor.ChildTask
	if err := json.Unmarshal(t.Payload, &ct); err != nil {
		e.applyLogged(ctx, def, st, executor.StepDone{Step: t.StepID, Attempt: t.Attempt,
			Err: &journal.Error{Message: "decoding the child workflow task: " + err.Error(), Code: "child"}}, ref)
		return
	}
	childID, _, err := e.Start(ctx, StartParams{
		Workflow: ct.Workflow, Version: ct.Version, Input: ct.Input,
		IdempotencyKey: executor.ChildKey(st.ID, t.StepID, t.Attempt),
		ParentID:       st.ID, ParentStep: t.StepID, ParentAttempt: t.Attempt,
	})
	if err != nil {
		if errors.Is(err, ordotype.ErrNotFound) || errors.Is(err, ordotype.ErrInvalid) {
			e.applyLogged(ctx, def, st, executor.StepDone{Step: t.StepID, Attempt: t.Attempt,
				Err: &journal.Error{Message: "starting child workflow: " + err.Error(), Code: "child"}}, ref)
			return
		}
		e.log.ErrorContext(ctx, "starting a child workflow", logInstance, t.InstanceID, logStep, t.StepID, "error", err)
		return // the lease runs out and the task is run again
	}
	e.fm.childrenStarted.Add(1)
	e.applyLogged(ctx, def, st, executor.ChildStarted{Step: t.StepID, Attempt: t.Attempt, ChildID: childID}, ref)
}

// runParent tells a parent that its child ended: the parent's step
// completes (or fails) in the same transaction that deletes the task.
func (e *Engine) runParent(ctx context.Context, t *ordostore.Task) {
	ref := &ordostore.TaskRef{ID: t.ID, Claim: t.Claim}
	var pt executor.ParentTask
	if err := json.Unmarshal(t.Payload, &pt); err != nil {
		e.log.ErrorContext(ctx, "decoding a parent task", logInstance, t.InstanceID, logTask, t.ID, "error", err)
		return
	}
	child, err := e.readState(ctx, t.InstanceID)
	if err != nil {
		e.log.ErrorContext(ctx, "loading a child instance", logInstance, t.InstanceID, "error", err)
		return
	}
	def, st, err := e.load(ctx, pt.Parent, true)
	if err != nil {
		e.log.ErrorContext(ctx, "loading a parent instance", logInstance, pt.Parent, "error", err)
		return
	}
	cmd := executor.ChildDone{Step: pt.Step, Attempt: pt.Attempt, ChildID: child.ID, Status: child.Status, Output: child.Output}
	if child.Status != ordotype.StatusCompleted {
		msg := fmt.Sprintf("child workflow %s (%s) ended %s", child.Workflow, child.ID, child.Status)
		if child.Error != nil {
			msg += ": " + child.Error.Message
		}
		cmd.Err = &journal.Error{Message: msg, Code: "child_" + string(child.Status)}
	}
	e.applyLogged(ctx, def, st, cmd, ref)
}

// runCancelChild cancels a child instance for its parent.
func (e *Engine) runCancelChild(ctx context.Context, t *ordostore.Task) {
	var ct executor.CancelTask
	if err := json.Unmarshal(t.Payload, &ct); err == nil && ct.Child != "" {
		err := e.Cancel(ctx, ct.Child, ct.Reason)
		if err != nil && !errors.Is(err, ordotype.ErrInvalid) && !errors.Is(err, ordotype.ErrNotFound) {
			e.log.ErrorContext(ctx, "cancelling a child instance", logInstance, ct.Child, "error", err)
			return
		}
	}
	e.finishTask(ctx, t)
}

// runDeadline ends an instance that ran past its workflow timeout.
func (e *Engine) runDeadline(ctx context.Context, t *ordostore.Task) {
	def, st, err := e.load(ctx, t.InstanceID, true)
	if err != nil {
		e.log.ErrorContext(ctx, "loading instance for its deadline", logInstance, t.InstanceID, "error", err)
		return
	}
	e.applyLogged(ctx, def, st, executor.Deadline{}, &ordostore.TaskRef{ID: t.ID, Claim: t.Claim})
}

// runRelease frees the slots of an instance that ended and admits the next
// deferred instances of its groups.
func (e *Engine) runRelease(ctx context.Context, t *ordostore.Task) {
	st, err := e.readState(ctx, t.InstanceID)
	if err != nil {
		e.log.ErrorContext(ctx, "loading instance to free its slots", logInstance, t.InstanceID, "error", err)
		return
	}
	for _, g := range st.Slots {
		if err := e.store.ReleaseSlot(ctx, g, st.ID); err != nil {
			e.log.ErrorContext(ctx, "freeing a slot", logInstance, st.ID, "group", g, "error", err)
			return
		}
	}
	def, _, err := e.Definition(ctx, st.Workflow, st.Version)
	if err == nil {
		for _, g := range st.Slots {
			e.admitNext(ctx, def, g)
		}
	}
	e.finishTask(ctx, t)
}

// admitNext admits the oldest deferred instances of a group, as many as it
// has free slots.
func (e *Engine) admitNext(ctx context.Context, def *definition.Workflow, group string) {
	heads, err := e.store.ListTasks(ctx, &ordostore.ListTasksParams{
		Kinds: []ordotype.TaskKind{ordotype.TaskAdmit}, Queues: []string{group}, Limit: executor.SlotLimit(def, group),
	})
	if err != nil {
		e.log.ErrorContext(ctx, "looking for deferred instances", "group", group, "error", err)
		return
	}
	for _, h := range heads {
		if !e.tryAdmit(ctx, h) {
			return
		}
	}
}

// runAdmit runs a deferred instance's admission task: the instance runs if
// it is the oldest of its group and gets a slot of every group it needs;
// otherwise the task rests until an instance of the group ends.
func (e *Engine) runAdmit(ctx context.Context, t *ordostore.Task) {
	if e.tryAdmit(ctx, t) {
		return
	}
	until := e.clock.Now().UTC().Add(parkLease)
	if _, err := e.store.ExtendLeases(ctx, &ordostore.ExtendLeasesParams{Owner: e.node, IDs: []int64{t.ID}, Until: until}); err != nil {
		e.log.ErrorContext(ctx, "resting a deferred instance", logInstance, t.InstanceID, "error", err)
	}
}

// tryAdmit admits the instance of an admission task if it can, and reports
// whether the instance is out of the way (admitted, or no longer deferred).
func (e *Engine) tryAdmit(ctx context.Context, t *ordostore.Task) bool {
	ref := &ordostore.TaskRef{ID: t.ID, Claim: t.Claim}
	def, st, err := e.load(ctx, t.InstanceID, true)
	if err != nil {
		e.log.ErrorContext(ctx, "loading a deferred instance", logInstance, t.InstanceID, "error", err)
		return false
	}
	if st.Status != ordotype.StatusDeferred {
		e.applyLogged(ctx, def, st, executor.Admit{}, ref) // stale: completes the task
		return true
	}
	// First come, first served: only the oldest of the group may go.
	heads, err := e.store.ListTasks(ctx, &ordostore.ListTasksParams{
		Kinds: []ordotype.TaskKind{ordotype.TaskAdmit}, Queues: []string{t.Queue}, Limit: executor.SlotLimit(def, t.Queue),
	})
	if err != nil {
		e.log.ErrorContext(ctx, "looking for deferred instances", "group", t.Queue, "error", err)
		return false
	}
	head := false
	for _, h := range heads {
		head = head || h.ID == t.ID
	}
	if !head {
		return false
	}
	now := e.clock.Now().UTC()
	for i, g := range st.Slots {
		ok, err := e.store.AcquireSlot(ctx, &ordostore.AcquireSlotParams{Group: g, Limit: executor.SlotLimit(def, g), Holder: st.ID, Now: now})
		if err == nil && ok {
			continue
		}
		if err != nil {
			e.log.ErrorContext(ctx, "taking a slot", logInstance, st.ID, "group", g, "error", err)
		}
		for _, taken := range st.Slots[:i] {
			_ = e.store.ReleaseSlot(ctx, taken, st.ID)
		}
		return false
	}
	_, stale, err := e.apply(ctx, def, st, executor.Admit{}, ref)
	if err != nil {
		if !errors.Is(err, ordotype.ErrClosed) {
			e.log.ErrorContext(ctx, "admitting a deferred instance", logInstance, st.ID, "error", err)
		}
		return false
	}
	if !stale {
		e.fm.admitted.Add(1)
	}
	return true
}

// finishTask deletes a task of the engine's own, in a transition of its
// instance that changes nothing else (as drop does for a task that is out
// of date).
func (e *Engine) finishTask(ctx context.Context, t *ordostore.Task) {
	def, st, err := e.load(ctx, t.InstanceID, true)
	if err != nil {
		e.log.ErrorContext(ctx, "loading instance to finish a task", logInstance, t.InstanceID, logTask, t.ID, "error", err)
		return
	}
	e.drop(ctx, def, st, t)
}

// applyLogged applies cmd and logs a failure: the task's lease runs out and
// it is run again.
func (e *Engine) applyLogged(ctx context.Context, def *definition.Workflow, st *journal.State, cmd executor.Command, ref *ordostore.TaskRef) {
	if _, _, err := e.apply(ctx, def, st, cmd, ref); err != nil && !errors.Is(err, ordotype.ErrClosed) {
		e.log.ErrorContext(ctx, "committing", logInstance, st.ID, "command", fmt.Sprintf("%T", cmd), "error", err)
	}
}
