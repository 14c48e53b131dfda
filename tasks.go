package ordo

import (
	"context"
	"fmt"
	"time"

	"github.com/ordoflow/ordo/internal/engine"
	"github.com/ordoflow/ordo/internal/executor"
	"github.com/ordoflow/ordo/internal/journal"
)

// Remote task queues and human tasks.
//
// A task step whose queue (`task: {queue: payment}`) has no Go handler
// registered with [Engine.Handle] waits in the store for a remote worker:
// the worker takes it with [Engine.PollTasks] (over HTTP: POST
// /api/v1/tasks/poll), runs it, and reports with [Engine.CompleteTask] or
// [Engine.FailTask], presenting the claim it got. A worker that takes long
// keeps its lease with [Engine.HeartbeatTask]; a lease that runs out makes
// the task claimable again, with the same attempt (so the same idempotency
// key) and a higher claim, and a result presented with the older claim is
// refused with [ErrLeaseLost] and journaled as step.rejected.
//
// A human step (`human: {role: manager, form: <JSON Schema>}`) waits as a
// task until someone completes it with [Engine.CompleteTask]; its output
// must satisfy the form, or the completion is refused with a [*FormError].
// A completion that names its [Person] is refused with an [*AssigneeError]
// unless the person has the step's role; the HTTP API names the token's
// roles.

// ErrLeaseLost is returned for a heartbeat, completion or failure of a task
// whose lease the caller lost: the task is done, it was claimed again after
// its lease ran out, or its instance no longer waits for it (cancelled). The
// worker should drop the task: its result is not used.
var ErrLeaseLost = engine.ErrLeaseLost

// FormError is the error of a human task's output that does not satisfy
// the step's form: Pointer is the JSON pointer of the value that is wrong.
// It matches [ErrInvalid].
type FormError = engine.FormError

// Person is who completes or fails a human task: a task whose step names a
// role (`human: {role: approver}`) is refused with an [*AssigneeError]
// unless Roles holds it. The HTTP API passes the roles its token carries.
type Person = engine.Person

// AssigneeError is the error of a result for a human task sent by a
// [Person] who does not have the step's role: Role is that role. Nothing
// is stored.
type AssigneeError = engine.AssigneeError

// OpenTask is an open task: a task of a remote queue, leased or not, or a
// waiting human task.
//
// ID and Claim identify the delivery: a completion presents both.
// IdempotencyKey is the same for every delivery of one attempt. Kind is
// "task" or "human"; Role and Form are set for human tasks. LeaseUntil is
// zero and Worker empty when the task is not leased. Deadline is when the
// delivery times out by the step's timeout (zero without one): the lease
// never runs past it, and past it the attempt fails with code timeout.
type OpenTask = engine.RemoteTask

// PollParams are the parameters of [Engine.PollTasks]: the queues to take
// tasks from, the worker's name (the tasks are leased to "worker:"+Worker),
// how many tasks to take at most (default 1, at most 100) and how long to
// wait for one (at most 60 seconds; 0 answers at once).
type PollParams = engine.PollParams

// ListTasksParams filter [Engine.ListTasks]: Queue, InstanceID, Kind
// ("task" or "human"), AfterID (the last ID of the page before) and Limit
// (default 100).
type ListTasksParams = engine.ListTasksParams

// TaskCompletion is the result of a task: its output, the workflow's new
// state (nil leaves it unchanged) and side effects. Output and State are
// JSON ([]byte, json.RawMessage) or any value encoding/json can marshal.
type TaskCompletion struct {
	Output      any
	State       any
	SideEffects []SideEffect
	// Person, when set, is who completes a human task, to check its role
	// against; nil does not check.
	Person *Person
	// InstanceID, when set, is the instance the task belongs to, as the
	// poll gave it: a late completion of a task that is done is then
	// journaled on it as step.rejected. A task that is open must belong
	// to it ([ErrInvalid] otherwise).
	InstanceID string
}

// TaskFailure says why a task failed. A retryable failure is retried with
// the step's retry policy (a new attempt, delivered again); one that is not
// fails the step at once.
type TaskFailure struct {
	Message   string
	Code      string
	Retryable bool
	// Person and InstanceID are as in [TaskCompletion].
	Person     *Person
	InstanceID string
}

// PollTasks takes up to p.Max tasks of p.Queues for worker p.Worker,
// waiting up to p.Wait for one to be ready, and journals each as started.
// It returns an empty slice when none came in time. Tasks are leased for
// [Config.TaskLease].
//
// Errors: [ErrInvalid] when no queue is named, a queue is a built-in one
// (ordo.*), or the worker has no name.
func (e *Engine) PollTasks(ctx context.Context, p *PollParams) ([]*OpenTask, error) {
	if p == nil {
		p = &PollParams{}
	}
	tasks, err := e.eng.PollTasks(ctx, *p)
	if err != nil {
		return nil, fmt.Errorf("ordo: poll: %w", err)
	}
	return tasks, nil
}

// HeartbeatTask extends the lease of a task the caller holds with claim,
// and returns when the lease now ends.
//
// Errors: [ErrLeaseLost] (stop working on the task); [ErrNotFound];
// [ErrInvalid] for a human task, which has no lease.
func (e *Engine) HeartbeatTask(ctx context.Context, id int64, claim int) (time.Time, error) {
	until, err := e.eng.HeartbeatTask(ctx, id, claim)
	if err != nil {
		return time.Time{}, fmt.Errorf("ordo: heartbeat: %w", err)
	}
	return until, nil
}

// CompleteTask completes a task with its result. A remote task needs the
// claim it was polled with; a human task takes none (pass 0) and its
// output must satisfy the step's form.
//
// Errors: [ErrLeaseLost] for a late or repeated completion (refused: the
// engine keeps the first); [ErrNotFound]; [ErrInvalid] (a [*FormError] for
// a human task) and [*AssigneeError] when the result is refused and
// nothing is stored.
func (e *Engine) CompleteTask(ctx context.Context, id int64, claim int, c *TaskCompletion) error {
	_, err := e.CompleteTaskNext(ctx, id, claim, c, nil)
	return err
}

// CompletedTask is what [Engine.CompleteTaskNext] did: InstanceID is the
// instance of the task completed, and Next the tasks it took for the worker.
type CompletedTask = engine.Completed

// CompleteTaskNext is [Engine.CompleteTask] for a worker that wants its
// next task in the same call: up to next.Max (default 1, at most 100) of
// the tasks the completion makes ready on next.Queues, such as the next
// step of the same instance, are leased to next.Worker and journaled as
// started in the completion's own transaction, and returned in
// CompletedTask.Next as [Engine.PollTasks] would return them (next.Wait is
// ignored: nothing is waited for). With next nil it takes none. A worker
// that runs a chain of steps so needs no poll between them.
//
// Errors: as [Engine.CompleteTask]; [ErrInvalid] also when next names no
// queue, a built-in one, or no worker.
func (e *Engine) CompleteTaskNext(ctx context.Context, id int64, claim int, c *TaskCompletion, next *PollParams) (*CompletedTask, error) {
	if c == nil {
		c = &TaskCompletion{}
	}
	r := &engine.TaskResult{Person: c.Person, InstanceID: c.InstanceID, Next: next}
	var err error
	if c.Output != nil {
		if r.Output, err = toJSON(c.Output); err != nil {
			return nil, fmt.Errorf("ordo: complete task %d: output: %v: %w", id, err, ErrInvalid)
		}
	}
	if c.State != nil {
		if r.State, err = toJSON(c.State); err != nil {
			return nil, fmt.Errorf("ordo: complete task %d: state: %v: %w", id, err, ErrInvalid)
		}
	}
	for i, se := range c.SideEffects {
		p, err := toJSON(se.Payload)
		if err != nil {
			return nil, fmt.Errorf("ordo: complete task %d: side effect %d: %v: %w", id, i, err, ErrInvalid)
		}
		r.Effects = append(r.Effects, executor.Effect{Type: se.Type, Payload: p})
	}
	done, err := e.eng.CompleteTask(ctx, id, claim, r)
	if err != nil {
		return nil, fmt.Errorf("ordo: complete: %w", err)
	}
	return done, nil
}

// FailTask fails a task's attempt. Errors: as [Engine.CompleteTask].
func (e *Engine) FailTask(ctx context.Context, id int64, claim int, f *TaskFailure) error {
	if f == nil {
		f = &TaskFailure{}
	}
	r := &engine.TaskResult{Err: &journal.Error{Message: f.Message, Code: f.Code, Retryable: f.Retryable}, Person: f.Person, InstanceID: f.InstanceID}
	if _, err := e.eng.CompleteTask(ctx, id, claim, r); err != nil {
		return fmt.Errorf("ordo: fail: %w", err)
	}
	return nil
}

// ListTasks returns open tasks in ID order: waiting human tasks and tasks
// of remote queues, leased or not.
func (e *Engine) ListTasks(ctx context.Context, p *ListTasksParams) ([]*OpenTask, error) {
	if p == nil {
		p = &ListTasksParams{}
	}
	tasks, err := e.eng.ListTasks(ctx, *p)
	if err != nil {
		return nil, fmt.Errorf("ordo: list tasks: %w", err)
	}
	return tasks, nil
}

// GetTask returns an open task. Errors: [ErrNotFound], also for a task
// that is done.
func (e *Engine) GetTask(ctx context.Context, id int64) (*OpenTask, error) {
	t, err := e.eng.GetTask(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("ordo: get task: %w", err)
	}
	return t, nil
}
