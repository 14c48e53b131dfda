package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
// on queue ordo.human, due never; they are completed by a person with an
// output that must satisfy the step's form.

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
	for p := range r.pollers[queue] {
		if !p.closed && p.free > 0 {
			p.free--
			p.pending++
			return p
		}
	}
	return nil
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
	if len(p.Queues) == 0 {
		return nil, fmt.Errorf("poll: name at least one queue: %w", ordotype.ErrInvalid)
	}
	for _, q := range p.Queues {
		if !remoteQueue(q) {
			return nil, fmt.Errorf("poll: queue %q cannot be polled (empty, or a built-in ordo.* queue): %w", q, ordotype.ErrInvalid)
		}
	}
	if strings.TrimSpace(p.Worker) == "" {
		return nil, fmt.Errorf("poll: the worker needs a name: %w", ordotype.ErrInvalid)
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
	if d := e.leaseFor(step); d != e.remote.lease {
		// A step with a lease of its own: extend the claim's to it.
		t.LeaseUntil = now.Add(d)
		if _, err := e.store.ExtendLeases(ctx, &ordostore.ExtendLeasesParams{Owner: t.LeaseOwner, IDs: []int64{t.ID}, Until: t.LeaseUntil}); err != nil {
			return nil, err
		}
	}
	st, _, err = e.apply(ctx, def, st, executor.StepClaimed{Step: t.StepID, Attempt: t.Attempt, Worker: worker, Claim: t.Claim}, nil)
	if executor.IsStale(err) {
		_, st, err = e.load(ctx, t.InstanceID, true)
		if err == nil {
			e.drop(ctx, def, st, t)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return e.view(def, st, step, t), nil
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
		return time.Time{}, e.reject(ctx, def, st, t, claim, "heartbeat")
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
	step := def.Step(t.StepID)
	if t.LeaseOwner == "" {
		return time.Time{}, fmt.Errorf("task %d: its lease was handed back: %w", id, ErrLeaseLost)
	}
	until := e.clock.Now().UTC().Add(e.leaseFor(step))
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
// task's output) when the result is refused and nothing is stored.
func (e *Engine) CompleteTask(ctx context.Context, id int64, claim int, r *TaskResult) error {
	if e.stopping.Load() {
		return ordotype.ErrClosed
	}
	if err := checkResult(r); err != nil {
		return err
	}
	t, def, st, err := e.openTask(ctx, id, false)
	if err != nil {
		if errors.Is(err, ErrLeaseLost) {
			e.m.rejected.Add(1)
		}
		return err
	}
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
			return e.reject(ctx, def, st, t, claim, resultWord(r))
		}
	}
	step := def.Step(t.StepID)
	if step == nil || !runnable(st, t) {
		e.drop(ctx, def, st, t)
		return fmt.Errorf("task %d: instance %s no longer waits for it (it is %s): %w", id, st.ID, st.Status, ErrLeaseLost)
	}
	if human && r.Err == nil && step.Human != nil && len(step.Human.Form) > 0 {
		if err := e.checkForm(def, step, r.Output); err != nil {
			return err
		}
	}
	if err := e.checkEffects(r.Effects); err != nil {
		return fmt.Errorf("task %d: %v: %w", id, err, ordotype.ErrInvalid)
	}
	done := executor.StepDone{Step: t.StepID, Attempt: t.Attempt, StartedAt: t.CreatedAt, Output: r.Output, State: r.State, Effects: r.Effects, Err: r.Err}
	ref := &ordostore.TaskRef{ID: t.ID, Claim: t.Claim}
	_, stale, err := e.apply(ctx, def, st, done, ref)
	if err != nil {
		return err
	}
	if stale {
		// The task changed between the read and the write: claimed again,
		// or done by another call.
		if cur, gerr := e.store.GetTask(ctx, id); gerr == nil && cur.Claim != t.Claim && !human {
			if _, st, lerr := e.load(ctx, t.InstanceID, true); lerr == nil {
				return e.reject(ctx, def, st, cur, claim, resultWord(r))
			}
		}
		e.m.rejected.Add(1)
		return fmt.Errorf("task %d is done or was claimed again: %w", id, ErrLeaseLost)
	}
	return nil
}

func resultWord(r *TaskResult) string {
	if r.Err != nil {
		return "failure"
	}
	return "completion"
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
	e.m.rejected.Add(1)
	if claim > t.Claim || claim <= 0 {
		// Not a claim the task ever had: bad input, nothing to record.
		return fmt.Errorf("task %d: %s with claim %d refused: the task was never given that claim (its claim is %d): %w", t.ID, what, claim, t.Claim, ErrLeaseLost)
	}
	worker := e.workerOfClaim(ctx, t, claim)
	reason := fmt.Sprintf("%s with claim %d refused: the task was claimed again (claim %d)", what, claim, t.Claim)
	cmd := executor.StepRejected{Step: t.StepID, Attempt: t.Attempt, Worker: worker, Claim: claim, Reason: reason}
	if _, _, err := e.apply(ctx, def, st, cmd, nil); err != nil && !executor.IsStale(err) {
		e.log.ErrorContext(ctx, "journaling a refused result", logInstance, t.InstanceID, logStep, t.StepID, "error", err)
	}
	return fmt.Errorf("task %d: %s: %w", t.ID, reason, ErrLeaseLost)
}

// workerOfClaim finds in the journal the worker that claimed task t's
// attempt with claim.
func (e *Engine) workerOfClaim(ctx context.Context, t *ordostore.Task, claim int) string {
	events, err := e.store.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: t.InstanceID})
	if err != nil {
		return ""
	}
	for i := len(events) - 1; i >= 0; i-- {
		ev := events[i]
		if ev.Type != string(journal.StepStarted) || ev.StepID != t.StepID || ev.Attempt != t.Attempt {
			continue
		}
		var data journal.Event
		if journal.UnmarshalData(ev.Data, &data) == nil && data.Claim == claim {
			return data.Worker
		}
	}
	return ""
}
