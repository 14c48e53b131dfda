package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/internal/executor"
	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// Remote task queues and human tasks.
//
// A task step whose queue has no Go handler in any engine process stays in
// the store until a worker polls its queue over the API: PollTasks claims it
// (leased to "worker:"+name), journals step.started, and hands it over. The
// worker completes or fails it presenting the claim (the task's lease
// counter) it got; a lease that runs out makes the task claimable again with
// the same attempt and a higher claim, and a result presented with an older
// claim is refused and journaled as step.rejected. Human steps wait as tasks
// on queue ordo.human, due never (or at the step's timeout, when
// runHumanTimeout fails the step); they are completed by a person with an
// output that must satisfy the step's form, and who must have the step's
// role when the caller says who it is (TaskResult.Person).

// Limits of a poll.
const (
	// MaxPollTasks caps the tasks one poll takes.
	MaxPollTasks = 100
	// MaxPollWait caps how long one poll waits for a task.
	MaxPollWait = 60 * time.Second
	// DefaultTaskLease is the lease of a task a worker takes, when
	// Config.TaskLease is not set.
	DefaultTaskLease = 30 * time.Second
	// workerPrefix starts the lease owner of a task leased to a worker.
	workerPrefix = "worker:"
)

// Task kinds as the remote API shows them.
const (
	TaskKindTask  = "task"
	TaskKindHuman = "human"
)

// ErrLeaseLost is returned for a heartbeat, completion or failure of a task
// whose lease the caller lost: the task is done, was claimed again since, or
// its step no longer waits for it (the instance was cancelled).
var ErrLeaseLost = errors.New("lease lost")

// FormError says where a human task's output does not satisfy the step's
// form. It matches ordotype.ErrInvalid.
type FormError struct {
	// Pointer is the JSON pointer of the value that is wrong ("" for the
	// whole output).
	Pointer string
	// Message says what is wrong.
	Message string
}

func (e *FormError) Error() string {
	at := e.Pointer
	if at == "" {
		at = "the root"
	}
	return fmt.Sprintf("output does not satisfy the form at %s: %s", at, e.Message)
}

// Is makes a FormError match ordotype.ErrInvalid.
func (e *FormError) Is(target error) bool { return target == ordotype.ErrInvalid }

// Person is who completes or fails a human task, for the engine to check
// the step's role against.
type Person struct {
	// Roles are the roles the person has.
	Roles []string
}

// AssigneeError refuses a result for a human task sent by a person who
// does not have the role its step names. Nothing is stored.
type AssigneeError struct {
	Task int64
	// Role is the role the step names.
	Role string
}

func (e *AssigneeError) Error() string {
	return fmt.Sprintf("task %d is a human task for role %s, which the person does not have", e.Task, e.Role)
}

// RemoteTask is an open task as the API shows it: a task of a remote queue,
// leased or not, or a waiting human task.
type RemoteTask struct {
	ID             int64
	Claim          int
	InstanceID     string
	Workflow       string
	Version        int
	Step           string
	Queue          string
	Command        string
	Attempt        int
	IdempotencyKey string
	Input          json.RawMessage
	WorkflowInput  json.RawMessage
	State          json.RawMessage
	// LeaseUntil is zero when the task is not leased.
	LeaseUntil time.Time
	// Deadline is when the delivery the worker holds times out, by the
	// step's timeout; zero when the step has none or the task is not
	// leased. The lease never runs past it.
	Deadline time.Time
	// Worker holds the lease ("" when not leased).
	Worker string
	// Kind is TaskKindTask or TaskKindHuman.
	Kind string
	// Role and Form of a human task.
	Role      string
	Form      json.RawMessage
	CreatedAt time.Time
	// Params are the step's params: fixed data from the definition for the
	// worker or person (an imported template's extra fields).
	Params json.RawMessage
	// TraceParent is the W3C trace context the instance was started under,
	// "" when none: a worker continues the trace with it.
	TraceParent string
}

// PollParams are the parameters of [Engine.PollTasks].
type PollParams struct {
	Queues []string
	Worker string
	// Max defaults to 1 and is capped at MaxPollTasks.
	Max int
	// Wait is capped at MaxPollWait.
	Wait time.Duration
}

// TaskResult is what a worker or a person sends to complete or fail a task.
type TaskResult struct {
	Output  json.RawMessage
	State   json.RawMessage
	Effects []executor.Effect
	// Err, when set, fails the attempt.
	Err *journal.Error
	// Person, when set, is who sends the result of a human task: it is
	// refused with an *AssigneeError unless Person has the step's role.
	// Nil does not check.
	Person *Person
	// InstanceID, when set, is the instance the task belongs to, as the
	// caller got it with the task. It lets a late result for a task that
	// is done be journaled on that instance; a task that is still open
	// must belong to it.
	InstanceID string
	// Next, on a completion by a worker, asks for tasks the completion
	// makes ready: up to Next.Max (default 1) tasks of Next.Queues are
	// leased to Next.Worker and journaled as started in the completion's
	// own transition, and returned in Completed.Next. Wait is ignored.
	Next *PollParams
}

// Completed is what a completion did: the instance of the task, and the
// tasks it took for the worker (TaskResult.Next).
type Completed struct {
	InstanceID string
	Next       []*RemoteTask
}

// ListTasksParams filter [Engine.ListTasks].
type ListTasksParams struct {
	Queue      string
	InstanceID string
	// Kind is TaskKindTask, TaskKindHuman or "" for both.
	Kind    string
	AfterID int64
	// Limit defaults to 100.
	Limit int
}

// remoteState is the engine's side of remote queues: the pollers waiting
// in this process, by queue, and the compiled forms of human steps.
type remoteState struct {
	lease   time.Duration
	waiting atomic.Int64 // pollers registered, to keep the commit path cheap

	mu      sync.Mutex
	pollers map[string]map[*poller]struct{}

	forms sync.Map // definition hash + "\x00" + step id → *compiledForm

	// handed holds the tasks this process handed to workers, by ID, until
	// their completion or failure comes: that need not read the task back
	// from the store. An entry may be out of date (the task was claimed
	// again elsewhere since, or dropped); the store's claim check at commit
	// still decides, so a stale entry costs only the usual refusal.
	handedMu sync.Mutex
	handed   map[int64]*ordostore.Task
}

// maxHanded bounds remoteState.handed: past it, entries whose lease has
// ended are swept out (their results are refused or fall back to a read).
const maxHanded = 1 << 14

// hand records tasks handed to a worker.
func (r *remoteState) hand(now time.Time, tasks ...*ordostore.Task) {
	r.handedMu.Lock()
	defer r.handedMu.Unlock()
	if len(r.handed)+len(tasks) > maxHanded {
		for id, t := range r.handed {
			if t.LeaseUntil.Before(now) {
				delete(r.handed, id)
			}
		}
		if len(r.handed)+len(tasks) > maxHanded {
			clear(r.handed) // workers slower than their leases: reads it is
		}
	}
	for _, t := range tasks {
		r.handed[t.ID] = t
	}
}

// handedTask takes out the task handed with id and claim, or returns nil.
func (r *remoteState) handedTask(id int64, claim int) *ordostore.Task {
	r.handedMu.Lock()
	defer r.handedMu.Unlock()
	t := r.handed[id]
	if t == nil || t.Claim != claim {
		return nil
	}
	delete(r.handed, id)
	return t
}

// poller is a PollTasks call waiting for tasks. A task a transition of this
// process makes on one of its queues is leased to its worker at insert time
// (offer) and handed over in memory once committed (deliver): no claim
// query. Fields but ch and handoff are guarded by remoteState.mu.
type poller struct {
	ch      chan struct{} // wake: a task may be claimable, or an offer was withdrawn
	handoff chan *ordostore.Task
	worker  string
	free    int  // slots that may still be offered
	pending int  // offered and not yet delivered or withdrawn
	closed  bool // no more offers
}

func (r *remoteState) init(lease time.Duration) {
	if lease <= 0 {
		lease = DefaultTaskLease
	}
	r.lease = lease
	r.pollers = map[string]map[*poller]struct{}{}
	r.handed = map[int64]*ordostore.Task{}
}

func (r *remoteState) register(queues []string, worker string, slots int) *poller {
	p := &poller{ch: make(chan struct{}, 1), handoff: make(chan *ordostore.Task, slots), worker: worker, free: slots}
	r.mu.Lock()
	for _, q := range queues {
		m := r.pollers[q]
		if m == nil {
			m = map[*poller]struct{}{}
			r.pollers[q] = m
		}
		m[p] = struct{}{}
	}
	r.mu.Unlock()
	r.waiting.Add(1)
	return p
}

// offer reserves a slot of a waiting poller of queue for a task about to
// be inserted, or returns nil.
func (r *remoteState) offer(queue string) *poller {
	if r.waiting.Load() == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.idle(queue)
	if p != nil {
		p.free--
		p.pending++
	}
	return p
}

// idle returns a waiting poller of queue with a free slot, or nil. The
// caller holds r.mu.
func (r *remoteState) idle(queue string) *poller {
	for p := range r.pollers[queue] {
		if !p.closed && p.free > 0 {
			return p
		}
	}
	return nil
}

// PollWaiting reports whether a poll waiting in this process for queue
// has a free slot (tests).
func (e *Engine) PollWaiting(queue string) bool { return e.remote.polled(queue) }

// polled reports whether a poller waiting for queue has a free slot.
func (r *remoteState) polled(queue string) bool {
	if r.waiting.Load() == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.idle(queue) != nil
}

// deliver hands a committed task to the poller it was offered to. The
// handoff channel has room for every slot, so it never blocks.
func (r *remoteState) deliver(p *poller, t *ordostore.Task) {
	r.mu.Lock()
	p.pending--
	p.handoff <- t
	r.mu.Unlock()
	select {
	case p.ch <- struct{}{}:
	default:
	}
}

// withdraw gives back a slot whose task was not inserted.
func (r *remoteState) withdraw(p *poller) {
	r.mu.Lock()
	p.pending--
	if !p.closed {
		p.free++
	}
	r.mu.Unlock()
	select {
	case p.ch <- struct{}{}:
	default:
	}
}

// take takes the poller's free slots for a claim query.
func (r *remoteState) take(p *poller) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := p.free
	p.free = 0
	return n
}

// giveBack returns slots a claim query did not fill.
func (r *remoteState) giveBack(p *poller, n int) {
	r.mu.Lock()
	if !p.closed {
		p.free += n
	}
	r.mu.Unlock()
}

// finish closes p to offers, waits for the tasks offered to it to be
// delivered or withdrawn (a commit in progress), and returns what it holds.
func (r *remoteState) finish(p *poller) []*ordostore.Task {
	r.mu.Lock()
	p.closed = true
	r.mu.Unlock()
	var out []*ordostore.Task
	for {
		select {
		case t := <-p.handoff:
			out = append(out, t)
			continue
		default:
		}
		r.mu.Lock()
		pending := p.pending
		r.mu.Unlock()
		if pending == 0 {
			for {
				select {
				case t := <-p.handoff:
					out = append(out, t)
				default:
					return out
				}
			}
		}
		select {
		case t := <-p.handoff:
			out = append(out, t)
		case <-p.ch:
		}
	}
}

// offerRemote leases a task a transition is about to insert to a worker
// waiting for its queue in this process, and returns the poller, or nil.
func (e *Engine) offerRemote(t *ordostore.Task, now time.Time) *poller {
	if t.Kind != ordotype.TaskStep || t.DueAt.After(now) || !remoteQueue(t.Queue) || e.stopping.Load() {
		return nil
	}
	p := e.remote.offer(t.Queue)
	if p != nil {
		t.LeaseOwner = workerPrefix + p.worker
		t.LeaseUntil = now.Add(e.remote.lease)
		t.Claim = 1
	}
	return p
}

func (r *remoteState) unregister(queues []string, p *poller) {
	r.mu.Lock()
	for _, q := range queues {
		if m := r.pollers[q]; m != nil {
			delete(m, p)
			if len(m) == 0 {
				delete(r.pollers, q)
			}
		}
	}
	r.mu.Unlock()
	r.waiting.Add(-1)
}

// wakePollers wakes, for each task this process just committed that a
// worker could take now, one poller of its queue that is not woken yet.
func (e *Engine) wakePollers(tasks []*ordostore.Task) {
	if e.remote.waiting.Load() == 0 || len(tasks) == 0 {
		return
	}
	now := e.clock.Now()
	e.remote.mu.Lock()
	defer e.remote.mu.Unlock()
	for _, t := range tasks {
		if t.Kind != ordotype.TaskStep || t.LeaseOwner != "" || t.DueAt.After(now) {
			continue
		}
		// One poller per task: waking them all would have each run a
		// claim query for one task.
		for p := range e.remote.pollers[t.Queue] {
			if p.closed {
				continue // answering already
			}
			select {
			case p.ch <- struct{}{}:
			default:
				continue // already woken
			}
			break
		}
	}
}

// leaseFor returns the lease of a task of step taken by a worker: the
// step's heartbeat timeout when it has one (a worker that stays silent
// longer loses the task), else the engine's task lease.
func (e *Engine) leaseFor(step *definition.Step) time.Duration {
	if step != nil && step.Heartbeat > 0 {
		return step.Heartbeat
	}
	return e.remote.lease
}

// remoteQueue reports whether a worker may poll queue: built-in queues
// (ordo.*) are the engine's own.
func remoteQueue(queue string) bool {
	return queue != "" && !strings.HasPrefix(queue, "ordo.")
}

// taskKind returns the API kind of a task, or "" for a task that is not
// open to workers or people (a side effect, a timer, an http step).
func taskKind(t *ordostore.Task) string {
	if t.Kind != ordotype.TaskStep {
		return ""
	}
	if t.Queue == executor.QueueHuman {
		return TaskKindHuman
	}
	if remoteQueue(t.Queue) {
		return TaskKindTask
	}
	return ""
}

// PollTasks takes up to p.Max tasks of p.Queues for worker p.Worker,
// waiting up to p.Wait for one to be ready. Each task taken is journaled as
// started. It returns an empty slice when none came in time.
func (e *Engine) PollTasks(ctx context.Context, p PollParams) ([]*RemoteTask, error) {
	if e.stopping.Load() {
		return nil, ordotype.ErrClosed
	}
	if err := checkPoll(&p); err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	p.Max = min(max(p.Max, 1), MaxPollTasks)
	p.Wait = min(max(p.Wait, 0), MaxPollWait)
	// A poll is a real-time wait, not a wait in workflow time: it does not
	// go through the engine's clock.
	deadline := time.Now().Add(p.Wait)
	w := e.remote.register(p.Queues, p.Worker, p.Max)
	defer e.remote.unregister(p.Queues, w)
	var got []*ordostore.Task
	var err error
	for {
		if len(w.handoff) > 0 {
			break // tasks were handed over: take them now
		}
		if n := e.remote.take(w); n > 0 {
			var claimed []*ordostore.Task
			claimed, err = e.claimRemote(context.WithoutCancel(ctx), p, n)
			e.remote.giveBack(w, n-len(claimed))
			got = append(got, claimed...)
		}
		if err != nil || len(got) > 0 || len(w.handoff) > 0 {
			break
		}
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		t := time.NewTimer(min(left, e.poll))
		select {
		case <-w.ch:
		case <-t.C:
		case <-ctx.Done():
			err = ctx.Err()
		case <-e.stop:
		}
		t.Stop()
		if err != nil {
			break
		}
	}
	handed := e.remote.finish(w)
	e.m.handedOff.Add(int64(len(handed)))
	if err != nil {
		// Tasks handed over are leased to the worker: they are delivered
		// again when the lease runs out.
		return nil, err
	}
	tasks, err := e.startRemoteAll(context.WithoutCancel(ctx), p.Worker, append(got, handed...))
	if tasks == nil {
		tasks = []*RemoteTask{}
	}
	return tasks, err
}

// checkPoll checks the queues and worker of a poll, or of a completion's
// request for the next tasks.
func checkPoll(p *PollParams) error {
	if len(p.Queues) == 0 {
		return fmt.Errorf("name at least one queue: %w", ordotype.ErrInvalid)
	}
	for _, q := range p.Queues {
		if !remoteQueue(q) {
			return fmt.Errorf("queue %q cannot be polled (empty, or a built-in ordo.* queue): %w", q, ordotype.ErrInvalid)
		}
	}
	if strings.TrimSpace(p.Worker) == "" {
		return fmt.Errorf("the worker needs a name: %w", ordotype.ErrInvalid)
	}
	return nil
}

// taking is a completion's request for the tasks it makes ready
// (TaskResult.Next) while it is decided, and what it took once committed.
type taking struct {
	worker string
	queues []string
	max    int
	// idx are the indices, in the decision's tasks, of the tasks taken, and
	// leases the ends of their leases.
	idx    []int
	leases []time.Time
	// tasks are the tasks taken, with their IDs, once committed.
	tasks []*ordostore.Task
}

// index returns the position in t.idx of the decision's task i, or -1.
func (t *taking) index(i int) int {
	if t == nil {
		return -1
	}
	return slices.Index(t.idx, i)
}

// takeNext takes for a worker, in a completion's decision, the tasks the
// completion makes ready on the worker's queues, up to take.max: each is
// journaled as started (the same step.started a poll writes, claim 1) in
// the decision, and leased to the worker when the transition is built. The
// worker gets its next task in the answer to its completion, in the same
// commit: no poll, no claim query, and one transition instead of two. This
// is the order of a chain of steps run by one worker, which is why it pays.
// The task has no ID yet when its step.started is decided, so that event
// names no task (findDeliveryStep copes).
func (e *Engine) takeNext(ctx context.Context, def *definition.Workflow, dec *executor.Decision, now time.Time, take *taking, stale bool) *executor.Decision {
	take.idx, take.leases = take.idx[:0], take.leases[:0]
	if stale || e.stopping.Load() {
		return dec
	}
	for i, nt := range dec.Tasks {
		if len(take.idx) == take.max {
			break
		}
		if nt.Kind != ordotype.TaskStep || nt.DueAt.After(now) || !slices.Contains(take.queues, nt.Queue) {
			continue
		}
		if len(take.idx) > 0 && e.remote.polled(nt.Queue) {
			// Beyond its next task, a worker takes no task that a poll
			// waiting in this process would take (offerRemote): that poll
			// has a free slot, the completing worker may not.
			continue
		}
		started, err := executor.Decide(ctx, def, dec.State, executor.StepClaimed{Step: nt.Step, Attempt: nt.Attempt, Worker: take.worker, Claim: 1}, now, e.rand)
		if err != nil {
			continue // not startable: it waits for a poll
		}
		// The tasks started makes (a timeout's) go after the decision's,
		// whose indices take.idx holds.
		dec = &executor.Decision{Events: append(dec.Events, started.Events...), Tasks: append(dec.Tasks, started.Tasks...), State: started.State, Cancel: dec.Cancel}
		step := def.Step(nt.Step)
		lease := now.Add(e.leaseFor(step))
		if step != nil && step.Timeout > 0 && step.Timeout < lease.Sub(now) {
			lease = now.Add(step.Timeout) // the lease never runs past the step's timeout
		}
		take.idx = append(take.idx, i)
		take.leases = append(take.leases, lease)
	}
	return dec
}

// claimRemote claims up to limit tasks for a worker from the store.
func (e *Engine) claimRemote(ctx context.Context, p PollParams, limit int) ([]*ordostore.Task, error) {
	now := e.clock.Now().UTC()
	claimed, err := e.store.ClaimTasks(ctx, &ordostore.ClaimTasksParams{
		Owner: workerPrefix + p.Worker, Kinds: []ordotype.TaskKind{ordotype.TaskStep}, Queues: p.Queues,
		Now: now, LeaseUntil: now.Add(e.remote.lease), Limit: limit,
	})
	if err != nil {
		return nil, err
	}
	e.m.remoteClaims.Add(1)
	for _, t := range claimed {
		if t.Claim > 1 {
			e.m.redelivered.Add(1) // its lease ran out, or was handed back
			e.m.leaseExpiries.Add(1)
		}
	}
	return claimed, nil
}

// startRemoteAll journals the tasks a worker took as started and returns
// their views; a task whose step no longer waits for it is dropped. Each
// claim is its own transition; they run at once so that they share group
// commits.
func (e *Engine) startRemoteAll(ctx context.Context, worker string, claimed []*ordostore.Task) ([]*RemoteTask, error) {
	now := e.clock.Now().UTC()
	views := make([]*RemoteTask, len(claimed))
	errs := make([]error, len(claimed))
	var wg sync.WaitGroup
	for i, t := range claimed {
		wg.Go(func() { views[i], errs[i] = e.startRemote(ctx, worker, t, now) })
	}
	wg.Wait()
	out := make([]*RemoteTask, 0, len(claimed))
	for i, v := range views {
		if errs[i] != nil {
			return out, errs[i]
		}
		if v != nil {
			out = append(out, v)
		}
	}
	e.m.polledTasks.Add(int64(len(out)))
	return out, nil
}

// startRemote journals a task a worker claimed as started and returns its
// view, or nil when its step no longer waits for it (it is then dropped).
func (e *Engine) startRemote(ctx context.Context, worker string, t *ordostore.Task, now time.Time) (*RemoteTask, error) {
	def, st, err := e.load(ctx, t.InstanceID, false)
	if err == nil && !runnable(st, t) {
		def, st, err = e.load(ctx, t.InstanceID, true) // the cache may be behind
	}
	if err != nil {
		e.log.ErrorContext(ctx, "loading instance for a polled task", logInstance, t.InstanceID, logTask, t.ID, "error", err)
		return nil, nil // the lease runs out and the task is claimed again
	}
	step := def.Step(t.StepID)
	if step == nil || !runnable(st, t) {
		e.drop(ctx, def, st, t)
		return nil, nil
	}
	if d := deadline(step, st, t); !d.IsZero() && !now.Before(d) {
		// The worker that held the task ran past the step's timeout and
		// its lease, capped at the deadline, ran out.
		e.timeOut(ctx, def, st, t, step)
		return nil, nil
	}
	if d := e.leaseFor(step); d != e.remote.lease {
		// A step with a lease of its own: extend the claim's to it.
		t.LeaseUntil = now.Add(d)
		if _, err := e.store.ExtendLeases(ctx, &ordostore.ExtendLeasesParams{Owner: t.LeaseOwner, IDs: []int64{t.ID}, Until: t.LeaseUntil}); err != nil {
			return nil, err
		}
	}
	st, _, err = e.apply(ctx, def, st, executor.StepClaimed{Step: t.StepID, Attempt: t.Attempt, Worker: worker, Claim: t.Claim, Task: t.ID}, nil)
	if executor.IsStale(err) {
		// The task is dropped only when the stored instance no longer
		// waits for it, as everywhere else; else it is left to its lease,
		// to be claimed again.
		if def, st, err := e.load(ctx, t.InstanceID, true); err == nil && !runnable(st, t) {
			e.drop(ctx, def, st, t)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if d := deadline(step, st, t); !d.IsZero() && d.Before(t.LeaseUntil) {
		// The lease the worker sees ends at the step's timeout, when the
		// attempt times out (the timeout task StepClaimed made fails it and
		// completes this task, so the stored lease need not be cut short:
		// that would cost a write per delivery). Heartbeats never extend
		// it past the deadline.
		t.LeaseUntil = d
	}
	e.remote.hand(now, t)
	return e.view(def, st, step, t), nil
}

// deadline returns when the delivery of task t that st shows started
// times out by its step's timeout, or zero: the step has no timeout, or
// the task's attempt has not started (not yet delivered).
func deadline(step *definition.Step, st *journal.State, t *ordostore.Task) time.Time {
	if step == nil || step.Timeout <= 0 || taskKind(t) != TaskKindTask {
		return time.Time{}
	}
	ss := st.Steps[t.StepID]
	if ss == nil || ss.Attempt != t.Attempt || ss.Status != ordotype.StepRunning || ss.StartedAt.IsZero() {
		return time.Time{}
	}
	return ss.StartedAt.Add(step.Timeout)
}

// pastDeadline reports whether the delivery of task t ran past its step's
// timeout at now. A deadline that seems passed is checked again on a fresh
// read: the cache may not hold the latest delivery's start yet. It returns
// the state it decided on.
func (e *Engine) pastDeadline(ctx context.Context, def *definition.Workflow, st *journal.State, t *ordostore.Task, now time.Time) (*definition.Workflow, *journal.State, bool, error) {
	d := deadline(def.Step(t.StepID), st, t)
	if d.IsZero() || now.Before(d) {
		return def, st, false, nil
	}
	def, st, err := e.load(ctx, t.InstanceID, true)
	if err != nil {
		return nil, nil, false, err
	}
	d = deadline(def.Step(t.StepID), st, t)
	return def, st, !d.IsZero() && !now.Before(d), nil
}

// timeOut fails the attempt of task t, whose delivery ran past its step's
// timeout, as a local step's handler that runs past it fails: with code
// timeout, retryable, so that the step's retry policy, onTimeout or
// onError decide what follows. The task is done with it.
func (e *Engine) timeOut(ctx context.Context, def *definition.Workflow, st *journal.State, t *ordostore.Task, step *definition.Step) {
	e.failTimedOut(ctx, def, st, t, fmt.Sprintf("the task ran past the step's timeout of %s", step.Timeout), true)
}

// failTimedOut fails the attempt of task t with code timeout and message,
// completing the task.
func (e *Engine) failTimedOut(ctx context.Context, def *definition.Workflow, st *journal.State, t *ordostore.Task, message string, retryable bool) {
	done := executor.StepDone{Step: t.StepID, Attempt: t.Attempt, Task: t.ID, Err: &journal.Error{Message: message, Code: "timeout", Retryable: retryable}}
	if _, _, err := e.apply(ctx, def, st, done, &ordostore.TaskRef{ID: t.ID, Claim: t.Claim}); err != nil && !errors.Is(err, ordotype.ErrClosed) {
		e.log.ErrorContext(ctx, "timing out a task", logInstance, t.InstanceID, logStep, t.StepID, logTask, t.ID, "error", err)
	}
	// Done or not, a task handed out from this process is read from the
	// store again when its worker answers.
	e.remote.handedTask(t.ID, t.Claim)
}

// drop completes a task whose step no longer waits for it, without a result.
func (e *Engine) drop(ctx context.Context, def *definition.Workflow, st *journal.State, t *ordostore.Task) {
	if _, _, err := e.apply(ctx, def, st, executor.StepDone{Step: t.StepID, Attempt: -1}, &ordostore.TaskRef{ID: t.ID, Claim: t.Claim}); err != nil && !errors.Is(err, ordotype.ErrClosed) {
		e.log.ErrorContext(ctx, "dropping a task that is out of date", logInstance, t.InstanceID, logTask, t.ID, "error", err)
	}
}

// view builds the API view of a task.
func (e *Engine) view(def *definition.Workflow, st *journal.State, step *definition.Step, t *ordostore.Task) *RemoteTask {
	rt := &RemoteTask{
		ID: t.ID, Claim: t.Claim, InstanceID: t.InstanceID, Workflow: st.Workflow, Version: st.Version,
		Step: t.StepID, Queue: t.Queue, Attempt: t.Attempt,
		IdempotencyKey: executor.StepKey(t.InstanceID, t.StepID, t.Attempt),
		WorkflowInput:  st.Input, State: st.Data, Kind: taskKind(t), CreatedAt: t.CreatedAt,
		TraceParent: st.TraceParent,
	}
	if ss := st.Steps[t.StepID]; ss != nil {
		rt.Input = ss.Input
	}
	if t.LeaseOwner != "" {
		rt.LeaseUntil = t.LeaseUntil
		rt.Worker = strings.TrimPrefix(t.LeaseOwner, workerPrefix)
		rt.Deadline = deadline(step, st, t)
	}
	if step != nil && step.Task != nil {
		rt.Command = step.Task.Command
	}
	if step != nil {
		rt.Params = step.Params
	}
	if step != nil && step.Human != nil {
		rt.Role, rt.Form = step.Human.Role, step.Human.Form
	}
	return rt
}

// openTask reads a task that is open to workers or people, with its
// instance. It returns ErrLeaseLost for a task that is done, and
// ordotype.ErrNotFound for one that never was or is not open to them.
func (e *Engine) openTask(ctx context.Context, id int64, fresh bool) (*ordostore.Task, *definition.Workflow, *journal.State, error) {
	t, err := e.store.GetTask(ctx, id)
	switch {
	case errors.Is(err, ordotype.ErrDuplicate):
		return nil, nil, nil, fmt.Errorf("task %d is done: %w", id, ErrLeaseLost)
	case errors.Is(err, ordotype.ErrNotFound):
		return nil, nil, nil, fmt.Errorf("no open task %d: %w", id, ordotype.ErrNotFound)
	case err != nil:
		return nil, nil, nil, err
	}
	if taskKind(t) == "" {
		return nil, nil, nil, fmt.Errorf("no open task %d (it is the engine's own): %w", id, ordotype.ErrNotFound)
	}
	def, st, err := e.load(ctx, t.InstanceID, fresh)
	if err != nil {
		return nil, nil, nil, err
	}
	return t, def, st, nil
}

// GetTask returns an open task. Errors: ordotype.ErrNotFound, also for a
// task that is done.
func (e *Engine) GetTask(ctx context.Context, id int64) (*RemoteTask, error) {
	t, def, st, err := e.openTask(ctx, id, false)
	if errors.Is(err, ErrLeaseLost) {
		return nil, fmt.Errorf("task %d is done: %w", id, ordotype.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	step := def.Step(t.StepID)
	if step == nil || !runnable(st, t) {
		return nil, fmt.Errorf("task %d is no longer open (instance %s is %s): %w", id, st.ID, st.Status, ordotype.ErrNotFound)
	}
	return e.view(def, st, step, t), nil
}

// ListTasks returns open tasks in ID order: waiting human tasks and tasks
// of remote queues, leased or not. Tasks whose step no longer waits for
// them (their instance was cancelled) are left out, so a page may hold
// fewer than Limit tasks.
func (e *Engine) ListTasks(ctx context.Context, p ListTasksParams) ([]*RemoteTask, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	sp := &ordostore.ListTasksParams{
		Kinds: []ordotype.TaskKind{ordotype.TaskStep}, InstanceID: p.InstanceID, AfterID: p.AfterID, Limit: limit,
	}
	switch {
	case p.Queue != "":
		sp.Queues = []string{p.Queue}
	case p.Kind == TaskKindHuman:
		sp.Queues = []string{executor.QueueHuman}
	}
	out := []*RemoteTask{}
	for len(out) < limit {
		rows, err := e.store.ListTasks(ctx, sp)
		if err != nil {
			return nil, err
		}
		for _, t := range rows {
			sp.AfterID = t.ID
			kind := taskKind(t)
			if kind == "" || (p.Kind != "" && kind != p.Kind) {
				continue
			}
			def, st, err := e.load(ctx, t.InstanceID, false)
			if err != nil {
				if errors.Is(err, ordotype.ErrNotFound) {
					continue
				}
				return nil, err
			}
			step := def.Step(t.StepID)
			if step == nil || !runnable(st, t) {
				continue
			}
			out = append(out, e.view(def, st, step, t))
			if len(out) == limit {
				break
			}
		}
		if len(rows) < sp.Limit {
			break
		}
	}
	return out, nil
}

// HeartbeatTask extends the lease of a task a worker holds with claim, and
// returns its new end. Errors: ErrLeaseLost (the task is done, was claimed
// again, or its step no longer waits for it: the worker should stop),
// ordotype.ErrNotFound, ordotype.ErrInvalid for a human task.
func (e *Engine) HeartbeatTask(ctx context.Context, id int64, claim int) (time.Time, error) {
	if e.stopping.Load() {
		return time.Time{}, ordotype.ErrClosed
	}
	t, def, st, err := e.openTask(ctx, id, false)
	if err != nil {
		if errors.Is(err, ErrLeaseLost) {
			e.m.rejected.Add(1)
		}
		return time.Time{}, err
	}
	if taskKind(t) == TaskKindHuman {
		return time.Time{}, fmt.Errorf("task %d is a human task: it has no lease: %w", id, ordotype.ErrInvalid)
	}
	if claim != t.Claim {
		return time.Time{}, e.reject(ctx, def, st, t, claim, fmt.Sprintf("heartbeat with claim %d", claim))
	}
	if !runnable(st, t) {
		if def, st, err = e.load(ctx, t.InstanceID, true); err != nil { // the cache may be behind
			return time.Time{}, err
		}
		if !runnable(st, t) {
			e.drop(ctx, def, st, t)
			return time.Time{}, fmt.Errorf("task %d: instance %s no longer waits for it (it is %s): %w", id, st.ID, st.Status, ErrLeaseLost)
		}
	}
	if t.LeaseOwner == "" {
		return time.Time{}, fmt.Errorf("task %d: its lease was handed back: %w", id, ErrLeaseLost)
	}
	now := e.clock.Now().UTC()
	def, st, past, err := e.pastDeadline(ctx, def, st, t, now)
	if err != nil {
		return time.Time{}, err
	}
	step := def.Step(t.StepID)
	if past {
		e.timeOut(ctx, def, st, t, step)
		return time.Time{}, fmt.Errorf("task %d: the attempt ran past the step's timeout of %s: %w", id, step.Timeout, ErrLeaseLost)
	}
	until := now.Add(e.leaseFor(step))
	if d := deadline(step, st, t); !d.IsZero() && d.Before(until) {
		until = d // the lease never runs past the step's timeout
	}
	n, err := e.store.ExtendLeases(ctx, &ordostore.ExtendLeasesParams{Owner: t.LeaseOwner, IDs: []int64{t.ID}, Until: until})
	if err != nil {
		return time.Time{}, err
	}
	if n == 0 {
		return time.Time{}, fmt.Errorf("task %d is done or was claimed again: %w", id, ErrLeaseLost)
	}
	return until, nil
}

// CompleteTask completes (or, with r.Err, fails) a task. A remote task
// needs the claim it was polled with; a human task takes none (claim is
// ignored) and its output must satisfy the step's form.
//
// Errors: ErrLeaseLost for a late or repeated result (it is refused, and
// journaled as step.rejected when the task was claimed again);
// ordotype.ErrNotFound; ordotype.ErrInvalid (a *FormError for a human
// task's output) and *AssigneeError (r.Person does not have a human
// task's role) when the result is refused and nothing is stored.
func (e *Engine) CompleteTask(ctx context.Context, id int64, claim int, r *TaskResult) (*Completed, error) {
	if e.stopping.Load() {
		return nil, ordotype.ErrClosed
	}
	if err := checkResult(r); err != nil {
		return nil, err
	}
	if r.Next != nil {
		if err := checkPoll(r.Next); err != nil {
			return nil, fmt.Errorf("task %d: next: %w", id, err)
		}
	}
	var (
		t   *ordostore.Task
		def *definition.Workflow
		st  *journal.State
		err error
	)
	if t = e.remote.handedTask(id, claim); t != nil {
		def, st, err = e.load(ctx, t.InstanceID, false)
	} else {
		t, def, st, err = e.openTask(ctx, id, false)
		if errors.Is(err, ErrLeaseLost) {
			return nil, e.rejectDone(ctx, id, claim, r, err)
		}
	}
	if err != nil {
		return nil, err
	}
	if r.InstanceID != "" && r.InstanceID != t.InstanceID {
		return nil, fmt.Errorf("task %d belongs to instance %s, not %s: %w", id, t.InstanceID, r.InstanceID, ordotype.ErrInvalid)
	}
	out := &Completed{InstanceID: t.InstanceID}
	if err := e.completeTask(ctx, t, def, st, claim, r, out); err != nil {
		return nil, err
	}
	return out, nil
}

// completeTask is CompleteTask once the task is read.
func (e *Engine) completeTask(ctx context.Context, t *ordostore.Task, def *definition.Workflow, st *journal.State, claim int, r *TaskResult, out *Completed) error {
	id := t.ID
	var err error
	if !runnable(st, t) {
		if def, st, err = e.load(ctx, t.InstanceID, true); err != nil { // the cache may be behind
			return err
		}
	}
	human := taskKind(t) == TaskKindHuman
	if !human {
		if claim <= 0 {
			return fmt.Errorf("task %d: the claim it was polled with is required: %w", id, ordotype.ErrInvalid)
		}
		if claim != t.Claim {
			return e.reject(ctx, def, st, t, claim, resultWord(r, claim))
		}
	}
	step := def.Step(t.StepID)
	if err := checkAssignee(r, id, step); err != nil {
		return err
	}
	if step == nil || !runnable(st, t) {
		e.drop(ctx, def, st, t)
		reason := fmt.Sprintf("%s refused: instance %s no longer waits for it (it is %s)", resultWord(r, claim), st.ID, st.Status)
		return e.rejected(ctx, def, st, t.ID, t.StepID, t.Attempt, claim, reason)
	}
	if human && r.Err == nil && step.Human != nil && len(step.Human.Form) > 0 {
		if err := e.checkForm(def, step, r.Output); err != nil {
			return err
		}
	}
	if err := e.checkEffects(r.Effects); err != nil {
		return fmt.Errorf("task %d: %v: %w", id, err, ordotype.ErrInvalid)
	}
	if !human {
		var past bool
		if def, st, past, err = e.pastDeadline(ctx, def, st, t, e.clock.Now().UTC()); err != nil {
			return err
		}
		if past {
			// Too late: the attempt times out, and the result is refused.
			e.timeOut(ctx, def, st, t, step)
			reason := fmt.Sprintf("%s refused: the attempt ran past the step's timeout of %s", resultWord(r, claim), step.Timeout)
			return e.rejected(ctx, def, st, t.ID, t.StepID, t.Attempt, claim, reason)
		}
	}
	done := executor.StepDone{Step: t.StepID, Attempt: t.Attempt, StartedAt: t.CreatedAt, Output: r.Output, State: r.State, Effects: r.Effects, Err: r.Err, Task: t.ID}
	ref := &ordostore.TaskRef{ID: t.ID, Claim: t.Claim}
	var take *taking
	if n := r.Next; n != nil && r.Err == nil && !human {
		take = &taking{worker: n.Worker, queues: n.Queues, max: min(max(n.Max, 1), MaxPollTasks)}
	}
	after, stale, err := e.applyTaking(ctx, def, st, done, ref, nil, take)
	if err != nil {
		return err
	}
	if take != nil && !stale && len(take.tasks) > 0 {
		out.Next = make([]*RemoteTask, len(take.tasks))
		for i, nt := range take.tasks {
			out.Next[i] = e.view(def, after, def.Step(nt.StepID), nt)
		}
		e.remote.hand(e.clock.Now(), take.tasks...)
		e.m.polledTasks.Add(int64(len(take.tasks)))
		e.m.takenNext.Add(int64(len(take.tasks)))
	}
	if stale {
		// The task changed between the read and the write: claimed again,
		// or done by another call.
		def, st, err := e.load(ctx, t.InstanceID, true)
		if err != nil {
			e.m.rejected.Add(1)
			return fmt.Errorf("task %d is done or was claimed again: %w", id, ErrLeaseLost)
		}
		if cur, gerr := e.store.GetTask(ctx, id); gerr == nil && cur.Claim != t.Claim && !human {
			return e.reject(ctx, def, st, cur, claim, resultWord(r, claim))
		}
		return e.rejected(ctx, def, st, t.ID, t.StepID, t.Attempt, claim, resultWord(r, claim)+" refused: the task is done")
	}
	return nil
}

// checkAssignee refuses a result for a human task of step when r names a
// person who does not have the step's role.
func checkAssignee(r *TaskResult, id int64, step *definition.Step) error {
	if r.Person == nil || step == nil || step.Human == nil || step.Human.Role == "" || slices.Contains(r.Person.Roles, step.Human.Role) {
		return nil
	}
	return &AssigneeError{Task: id, Role: step.Human.Role}
}

// resultWord names a result in a step.rejected reason, with its claim.
func resultWord(r *TaskResult, claim int) string {
	w := "completion"
	if r.Err != nil {
		w = "failure"
	}
	if claim > 0 {
		w += fmt.Sprintf(" with claim %d", claim)
	}
	return w
}

// checkResult checks what a result holds before anything is read.
func checkResult(r *TaskResult) error {
	if r.Output != nil && !json.Valid(r.Output) {
		return fmt.Errorf("output is not valid JSON: %w", ordotype.ErrInvalid)
	}
	if r.State != nil && !json.Valid(r.State) {
		return fmt.Errorf("state is not valid JSON: %w", ordotype.ErrInvalid)
	}
	if r.Err != nil && strings.TrimSpace(r.Err.Message) == "" {
		return fmt.Errorf("error.message is required: %w", ordotype.ErrInvalid)
	}
	for i, eff := range r.Effects {
		if eff.Type == "" {
			return fmt.Errorf("effects[%d].type is required: %w", i, ordotype.ErrInvalid)
		}
		if eff.Payload != nil && !json.Valid(eff.Payload) {
			return fmt.Errorf("effects[%d].payload is not valid JSON: %w", i, ordotype.ErrInvalid)
		}
	}
	return nil
}

// reject journals a result (or heartbeat) presented with a claim the task no
// longer has (an older one), and returns ErrLeaseLost. A claim the task
// never had is refused without a record.
func (e *Engine) reject(ctx context.Context, def *definition.Workflow, st *journal.State, t *ordostore.Task, claim int, what string) error {
	if claim > t.Claim || claim <= 0 {
		// Not a claim the task ever had: bad input, nothing to record.
		e.m.rejected.Add(1)
		return fmt.Errorf("task %d: %s refused: the task was never given that claim (its claim is %d): %w", t.ID, what, t.Claim, ErrLeaseLost)
	}
	reason := fmt.Sprintf("%s refused: the task was claimed again (claim %d)", what, t.Claim)
	return e.rejected(ctx, def, st, t.ID, t.StepID, t.Attempt, claim, reason)
}

// rejected journals a refused result or heartbeat for task id, of step's
// attempt, on instance st as step.rejected, with the worker that held
// claim (none for a human task's), and returns ErrLeaseLost with reason.
// The record changes nothing else in the instance.
func (e *Engine) rejected(ctx context.Context, def *definition.Workflow, st *journal.State, id int64, step string, attempt, claim int, reason string) error {
	e.m.rejected.Add(1)
	worker := ""
	if claim > 0 {
		worker, _, _, _ = e.findDeliveryStep(ctx, st.ID, id, claim)
	}
	cmd := executor.StepRejected{Step: step, Attempt: attempt, Worker: worker, Claim: claim, Reason: reason}
	if _, _, err := e.apply(ctx, def, st, cmd, nil); err != nil && !executor.IsStale(err) {
		e.log.ErrorContext(ctx, "journaling a refused result", logInstance, st.ID, logStep, step, logTask, id, "error", err)
	}
	return fmt.Errorf("task %d: %s: %w", id, reason, ErrLeaseLost)
}

// rejectDone refuses a result for task id, which is done (gone from the
// store), and journals it on the instance r names when that instance's
// journal shows the task: a worker's claim as a step.started of the task,
// or a human task's earlier result. Without an instance, or one that does
// not show the task, nothing can be recorded: it returns cause.
func (e *Engine) rejectDone(ctx context.Context, id int64, claim int, r *TaskResult, cause error) error {
	if r.InstanceID == "" {
		e.m.rejected.Add(1)
		return cause
	}
	def, st, err := e.load(ctx, r.InstanceID, true)
	if errors.Is(err, ordotype.ErrNotFound) {
		e.m.rejected.Add(1)
		return cause // an unknown (or pruned) instance
	}
	if err != nil {
		return err
	}
	var (
		step    string
		attempt int
		found   bool
	)
	if claim > 0 {
		_, step, attempt, found = e.findDeliveryStep(ctx, st.ID, id, claim)
	} else {
		step, attempt, found = e.findHumanResult(ctx, def, st.ID, id)
	}
	if !found {
		e.m.rejected.Add(1)
		return cause
	}
	if err := checkAssignee(r, id, def.Step(step)); err != nil {
		return err
	}
	reason := resultWord(r, claim) + " refused: the task is done"
	if ss, sd := st.Steps[step], def.Step(step); ss != nil && sd != nil && ss.Attempt == attempt && ss.Error != nil && ss.Error.Code == "timeout" {
		// The engine failed the attempt at its deadline (runStepTimeout).
		reason = fmt.Sprintf("%s refused: the attempt ran past the step's timeout of %s", resultWord(r, claim), sd.Timeout)
	}
	return e.rejected(ctx, def, st, id, step, attempt, claim, reason)
}

// findDeliveryStep finds in instance's journal the step.started of task
// id with claim: the worker that took it, and the step and attempt it
// started. A task a worker took with its completion of the task before
// was started in the same transition that made it, before it had an ID:
// its step.started names no task, and is found by the step and attempt of
// the result that names it. Journals written before events named their
// task find none.
func (e *Engine) findDeliveryStep(ctx context.Context, instance string, id int64, claim int) (worker, step string, attempt int, found bool) {
	events, err := e.store.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: instance})
	if err != nil {
		return "", "", 0, false
	}
	data := make([]journal.Event, len(events))
	for i, ev := range events {
		if journal.UnmarshalData(ev.Data, &data[i]) != nil {
			data[i] = journal.Event{}
		}
	}
	started := func(match func(i int) bool) bool {
		for i := len(events) - 1; i >= 0; i-- {
			if events[i].Type == string(journal.StepStarted) && data[i].Claim == claim && match(i) {
				worker, step, attempt = data[i].Worker, events[i].StepID, events[i].Attempt
				return true
			}
		}
		return false
	}
	if started(func(i int) bool { return data[i].Task == id }) {
		return worker, step, attempt, true
	}
	for i := len(events) - 1; i >= 0; i-- {
		if data[i].Task != id {
			continue
		}
		rs, ra := events[i].StepID, events[i].Attempt
		return worker, step, attempt, started(func(j int) bool {
			return data[j].Task == 0 && events[j].StepID == rs && events[j].Attempt == ra
		})
	}
	return "", "", 0, false
}

// findHumanResult finds in instance's journal the result a person sent
// for human task id, and returns its step and attempt.
func (e *Engine) findHumanResult(ctx context.Context, def *definition.Workflow, instance string, id int64) (step string, attempt int, found bool) {
	found = e.scanTaskEvents(ctx, instance, id, func(ev *ordostore.Event, _ *journal.Event) bool {
		s := def.Step(ev.StepID)
		if s == nil || s.Human == nil {
			return false
		}
		step, attempt = ev.StepID, ev.Attempt
		return true
	})
	return step, attempt, found
}

// scanTaskEvents calls match with the events of instance's journal that
// name task id, latest first, until it returns true; it reports whether
// one did.
func (e *Engine) scanTaskEvents(ctx context.Context, instance string, id int64, match func(*ordostore.Event, *journal.Event) bool) bool {
	events, err := e.store.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: instance})
	if err != nil {
		return false
	}
	for i := len(events) - 1; i >= 0; i-- {
		var data journal.Event
		if journal.UnmarshalData(events[i].Data, &data) != nil || data.Task != id {
			continue
		}
		if match(events[i], &data) {
			return true
		}
	}
	return false
}
