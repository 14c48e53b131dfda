// Package engine wires Ordo's pipeline together around one journal:
//
//	triggers (internal/trigger) → executor (internal/executor) → effects (internal/effects)
//
// Every change of an instance goes through [Engine.apply]: the executor's pure
// Decide computes events and tasks from the instance's state, and the group
// committer writes events, read model, the finished task and the new tasks
// in one transaction. Tasks created here are leased to this process at
// insert time and handed to its worker pools in memory; anything else (tasks
// due later, tasks beyond capacity, tasks of a dead process) is claimed from
// the store by the scheduler.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/internal/effects"
	"github.com/ordoflow/ordo/internal/executor"
	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/internal/trigger"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// Config configures an [Engine]. Zero fields take their defaults.
type Config struct {
	Store  ordostore.Store
	Clock  ordotype.Clock
	Logger *slog.Logger
	// NodeID names this process in task leases. Defaults to host-pid-random.
	NodeID string
	// Workers is the number of goroutines running steps. Defaults to 64.
	Workers int
	// EffectWorkers is the number of goroutines performing side effects.
	// Defaults to 16.
	EffectWorkers int
	// LeaseDuration is how long a claimed task stays leased to this process.
	// Defaults to 5 minutes.
	LeaseDuration time.Duration
	// PollInterval is how often the scheduler looks for work it was not told
	// about (expired leases, other processes' tasks). Defaults to 1 second.
	PollInterval time.Duration
	// MaxBatch caps the transitions in one group commit. Defaults to 512.
	MaxBatch int
	// CacheSize caps the states of running instances kept in memory.
	// Defaults to 10000; -1 disables the cache.
	CacheSize int
	// Rand returns values in [0,1) for retry jitter. Defaults to math/rand/v2.
	Rand func() float64
	// HTTPClient makes the calls of http steps and http side effects.
	// Defaults to a client with a 30 second timeout.
	HTTPClient *http.Client
	// Roles are the roles this node runs (roles.go); nil means all.
	Roles []string

	// Observe, when set, is told about every commit (see [Observer]).
	Observe Observer
	// TracerProvider, when set, traces the step attempts and effect tries
	// of instances started in a trace.
	TracerProvider trace.TracerProvider
	// TaskLease is how long a task taken by a remote worker stays leased
	// to it without a heartbeat. Defaults to DefaultTaskLease.
	TaskLease time.Duration
}

// StepFunc runs one attempt of a step.
type StepFunc func(ctx context.Context, call *Call) (*Outcome, error)

// Call is what a step handler is given.
type Call struct {
	InstanceID     string
	Workflow       string
	Version        int
	Step           string
	Attempt        int
	IdempotencyKey string
	Input          json.RawMessage // the step's input
	WorkflowInput  json.RawMessage
	State          json.RawMessage // the workflow's state before the step
	Spec           *definition.Step
}

// Outcome is what a step handler returns.
type Outcome struct {
	Output  json.RawMessage
	State   json.RawMessage // nil: unchanged
	Effects []executor.Effect
}

// EffectFunc performs one try of a side effect.
type EffectFunc func(ctx context.Context, call *EffectCall) error

// EffectCall is what an effect interpreter is given.
type EffectCall struct {
	InstanceID     string
	Step           string
	Index          int
	Type           string
	Payload        json.RawMessage
	IdempotencyKey string
	Attempt        int
}

// Engine runs workflow instances. Create it with [New]; it is running until
// [Engine.Stop].
type Engine struct {
	store  ordostore.Store
	clock  ordotype.Clock
	log    *slog.Logger
	node   string
	lease  time.Duration
	poll   time.Duration
	rand   func() float64
	http   *http.Client
	obs    Observer
	tracer trace.Tracer // nil: no spans
	m      metricsHook
	commit *committer
	cache  *stateCache
	locks  *keyLock
	// exclusive is set when this process is the store's only writer.
	exclusive bool
	roles     roleSet
	// notified receives the store's wake-ups (ordostore.Notifier); nil
	// when the store has none or this node claims nothing.
	notified <-chan struct{}

	steps   *pool
	effects *pool
	waits   *pool // receive steps: kept messages, and timeouts
	admits  *pool // deferred instances
	fm      flowMetrics

	firing atomic.Int64 // timers claimed and not yet fired (timers.go)
	// armed is the due time (Unix ns) the scheduler sleeps until: 0 while
	// it looks for it, MaxInt64 when nothing is due (scheduler.go).
	armed atomic.Int64
	// timerPass is held by a pass of fireTimers; timerRetries are the
	// unleased timers waiting to fire again (timers.go).
	timerPass    sync.Mutex
	timerRetries timerRetries

	mu        sync.RWMutex
	handlers  map[string]StepFunc
	effectFns map[string]EffectFunc
	defs      map[string]*definition.Workflow // "name@version"
	latest    map[string]int

	waitMu  sync.Mutex
	waiters map[string][]chan *journal.State

	remote remoteState

	wake     chan struct{}
	starved  atomic.Bool
	stopping atomic.Bool
	stop     chan struct{}
	schedWG  sync.WaitGroup
	stopOnce sync.Once
}

// New starts an engine on cfg.Store. On an exclusive store every lease is
// handed back first: the previous process that held them is gone.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Store == nil {
		return nil, errors.New("engine: missing store")
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if cfg.NodeID == "" {
		host, _ := os.Hostname()
		cfg.NodeID = host + "-" + strconv.Itoa(os.Getpid()) + "-" + uuid.NewString()[:8]
	}
	cfg.Workers = orDefault(cfg.Workers, 64)
	cfg.EffectWorkers = orDefault(cfg.EffectWorkers, 16)
	cfg.MaxBatch = orDefault(cfg.MaxBatch, 512)
	if cfg.LeaseDuration <= 0 {
		cfg.LeaseDuration = 5 * time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 10000
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	roles, err := checkRoles(cfg.Roles, cfg.Store)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		store:     cfg.Store,
		clock:     cfg.Clock,
		log:       cfg.Logger,
		node:      cfg.NodeID,
		lease:     cfg.LeaseDuration,
		poll:      cfg.PollInterval,
		rand:      cfg.Rand,
		http:      cfg.HTTPClient,
		obs:       cfg.Observe,
		cache:     newStateCache(cfg.CacheSize),
		locks:     newKeyLock(),
		exclusive: cfg.Store.Exclusive(),
		roles:     roles,
		handlers:  map[string]StepFunc{},
		effectFns: map[string]EffectFunc{},
		defs:      map[string]*definition.Workflow{},
		latest:    map[string]int{},
		waiters:   map[string][]chan *journal.State{},
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	if cfg.TracerProvider != nil {
		e.tracer = cfg.TracerProvider.Tracer("github.com/ordoflow/ordo")
	}
	e.remote.init(cfg.TaskLease)
	if cfg.Store.Exclusive() {
		if _, err := cfg.Store.ReleaseLeases(ctx, ""); err != nil {
			return nil, fmt.Errorf("engine: releasing leases: %w", err)
		}
	}
	e.commit = newCommitter(cfg.Store, cfg.MaxBatch, &e.m)
	if !e.exclusive {
		e.commit.workers = sharedCommitters
	}
	e.commit.start()
	e.steps = newPool(ordotype.TaskStep, cfg.Workers, cfg.Workers*8, e.runStep, e.taskDone)
	e.effects = newPool(ordotype.TaskEffect, cfg.EffectWorkers, cfg.EffectWorkers*8, e.runEffect, e.taskDone)
	e.waits = newPool(ordotype.TaskReceive, 4, 256, e.runReceive, e.taskDone)
	e.admits = newPool(ordotype.TaskAdmit, 2, 64, e.runAdmit, e.taskDone)
	// Timers are fired by the scheduler in batches (timers.go), not by a pool.
	e.addRoleQueues()
	e.registerBuiltinEffects()
	e.schedWG.Add(3)
	go e.scheduler()
	go e.heartbeat()
	go e.janitor()
	return e, nil
}

// registerBuiltinEffects registers the interpreters of the built-in side
// effects: http (with the engine's HTTP client) and log (to its logger).
// RegisterEffect may replace them.
func (e *Engine) registerBuiltinEffects() {
	e.RegisterEffect("http", func(ctx context.Context, c *EffectCall) error {
		return effects.HTTP(ctx, e.http, c.Payload, c.IdempotencyKey)
	})
	e.RegisterEffect("log", func(ctx context.Context, c *EffectCall) error {
		return effects.Log(ctx, e.log, c.Payload, logInstance, c.InstanceID, logStep, c.Step, "ordo.effect.key", c.IdempotencyKey)
	})
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// Stop stops the engine: no new work is taken, running steps and effects
// finish and are committed, and tasks leased but not started are handed back
// to the store. It does not close the store. It is safe to call twice.
func (e *Engine) Stop(ctx context.Context) error {
	var err error
	e.stopOnce.Do(func() {
		e.stopping.Store(true)
		close(e.stop)
		e.schedWG.Wait()
		for _, p := range e.pools() {
			p.close()
		}
		e.commit.close()
		if _, rerr := e.store.ReleaseLeases(context.WithoutCancel(ctx), e.node); rerr != nil && !errors.Is(rerr, ordotype.ErrClosed) {
			err = fmt.Errorf("engine: handing back leases: %w", rerr)
		}
	})
	return err
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	s := e.m.snapshot()
	s.MessagesSent = e.fm.messagesSent.Load()
	s.MessagesDelivered = e.fm.messagesDelivered.Load()
	s.MessagesDropped = e.fm.messagesDropped.Load()
	s.ChildrenStarted = e.fm.childrenStarted.Load()
	s.Admitted = e.fm.admitted.Load()
	return s
}

// NodeID returns the name this process leases tasks under.
func (e *Engine) NodeID() string { return e.node }

// Store returns the engine's store.
func (e *Engine) Store() ordostore.Store { return e.store }

// Clock returns the engine's clock.
func (e *Engine) Clock() ordotype.Clock { return e.clock }

// Unsupported lists what a definition asks for that this engine does not
// run yet: a definition that uses it is refused at deploy time rather than
// left to stall or to have a setting ignored.
//
// Every part of the definition format runs today, so it returns nil; it is
// kept so that a part added to the format before the engine runs it is
// refused rather than ignored.
func Unsupported(*definition.Workflow) []string { return nil }

// RegisterDefinition stores def as a new version unless the latest version
// is identical, and returns the version. A definition that uses something
// the engine does not run yet ([Unsupported]) is refused with
// ordotype.ErrInvalid.
func (e *Engine) RegisterDefinition(ctx context.Context, def *definition.Workflow) (int, error) {
	v, _, err := e.PutDefinition(ctx, def)
	return v, err
}

// PutDefinition is RegisterDefinition that also reports whether it stored
// a new version (false: the latest version was identical).
func (e *Engine) PutDefinition(ctx context.Context, def *definition.Workflow) (int, bool, error) {
	if missing := Unsupported(def); len(missing) > 0 {
		return 0, false, fmt.Errorf("workflow %s uses what this version of Ordo does not run yet: %s: %w",
			def.Name, strings.Join(missing, "; "), ordotype.ErrInvalid)
	}
	rec, created, err := e.store.PutDefinition(ctx, &ordostore.PutDefinitionParams{
		Name: def.Name, Hash: def.Hash, Source: def.Source, Now: e.clock.Now(),
	})
	if err != nil {
		return 0, false, fmt.Errorf("storing definition %s: %w", def.Name, err)
	}
	e.mu.Lock()
	e.defs[defKey(def.Name, rec.Version)] = def
	if rec.Version >= e.latest[def.Name] {
		e.latest[def.Name] = rec.Version
	}
	e.mu.Unlock()
	return rec.Version, created, nil
}

// RegisterHandler makes this process run the steps of queue (a handler name
// or worker queue) with fn.
func (e *Engine) RegisterHandler(queue string, fn StepFunc) {
	e.mu.Lock()
	e.handlers[queue] = fn
	e.mu.Unlock()
	if e.roles.executor {
		e.steps.addQueue(queue)
	}
	e.poke()
}

// HasHandler reports whether queue has a handler in this process.
func (e *Engine) HasHandler(queue string) bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	_, ok := e.handlers[queue]
	return ok
}

// RegisterEffect makes this process perform side effects of type typ with fn.
func (e *Engine) RegisterEffect(typ string, fn EffectFunc) {
	e.mu.Lock()
	e.effectFns[typ] = fn
	e.mu.Unlock()
}

func defKey(name string, version int) string { return name + "@" + strconv.Itoa(version) }

// Definition returns a version of a workflow definition (0: the latest).
func (e *Engine) Definition(ctx context.Context, name string, version int) (*definition.Workflow, int, error) {
	e.mu.RLock()
	if version == 0 {
		version = e.latest[name]
	}
	def := e.defs[defKey(name, version)]
	e.mu.RUnlock()
	if def != nil {
		return def, version, nil
	}
	rec, err := e.store.GetDefinition(ctx, name, version)
	if err != nil {
		if errors.Is(err, ordotype.ErrNotFound) {
			if version == 0 {
				return nil, 0, fmt.Errorf("unknown workflow %q: %w", name, ordotype.ErrNotFound)
			}
			return nil, 0, fmt.Errorf("unknown workflow %q version %d: %w", name, version, ordotype.ErrNotFound)
		}
		return nil, 0, err
	}
	def, err = definition.Parse(rec.Source, rec.Name+".json")
	if err != nil {
		return nil, 0, fmt.Errorf("stored definition %s v%d no longer compiles: %w", rec.Name, rec.Version, err)
	}
	e.mu.Lock()
	e.defs[defKey(rec.Name, rec.Version)] = def
	if rec.Version > e.latest[rec.Name] {
		e.latest[rec.Name] = rec.Version
	}
	e.mu.Unlock()
	return def, rec.Version, nil
}

// StartParams are the parameters of [Engine.Start].
type StartParams = trigger.StartParams

// Start starts an instance, or returns the existing one (existed=true) when
// the idempotency key was used before.
func (e *Engine) Start(ctx context.Context, p StartParams) (id string, existed bool, err error) {
	if e.stopping.Load() {
		return "", false, ordotype.ErrClosed
	}
	def, version, err := e.Definition(ctx, p.Workflow, p.Version)
	if err != nil {
		return "", false, err
	}
	if p.TraceParent == "" {
		p.TraceParent = TraceParent(ctx)
	}
	cmd, err := trigger.Start(ctx, def, version, p)
	if err != nil {
		return "", false, err
	}
	if cmd.IdempotencyKey != "" {
		inst, err := e.store.GetInstanceByKey(ctx, def.Name, cmd.IdempotencyKey)
		if err == nil {
			return inst.ID, true, nil
		}
		if !errors.Is(err, ordotype.ErrNotFound) {
			return "", false, err
		}
	}
	cmd.ID = NewID()
	res, _, err := e.apply(ctx, def, nil, cmd, nil)
	if err != nil {
		var exists *existsError
		if errors.As(err, &exists) {
			return exists.id, true, nil
		}
		return "", false, err
	}
	return res.ID, false, nil
}

// NewID returns a new instance ID: a UUIDv7, so IDs sort by creation time.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

type existsError struct{ id string }

func (e *existsError) Error() string { return "instance exists: " + e.id }
func (e *existsError) Unwrap() error { return ordotype.ErrAlreadyExists }

// Resubmit restarts a parked or failed instance.
func (e *Engine) Resubmit(ctx context.Context, id string, cmd executor.Resubmit) error {
	return e.command(ctx, id, cmd)
}

// Cancel cancels an instance that has not ended.
func (e *Engine) Cancel(ctx context.Context, id string, reason string) error {
	return e.command(ctx, id, executor.Cancel{Reason: reason})
}

func (e *Engine) command(ctx context.Context, id string, cmd executor.Command) error {
	if e.stopping.Load() {
		return ordotype.ErrClosed
	}
	def, st, err := e.load(ctx, id, true)
	if err != nil {
		return err
	}
	_, _, err = e.apply(ctx, def, st, cmd, nil)
	return err
}

// load returns an instance's definition and state, from the cache unless
// fresh is set.
func (e *Engine) load(ctx context.Context, id string, fresh bool) (*definition.Workflow, *journal.State, error) {
	if !fresh {
		if def, st := e.cache.get(id); st != nil {
			return def, st, nil
		}
	}
	st, err := e.readState(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	def, _, err := e.Definition(ctx, st.Workflow, st.Version)
	if err != nil {
		return nil, nil, err
	}
	e.cache.commit(id, def, st)
	return def, st, nil
}

// maxConflicts bounds how often one change is decided again after losing an
// optimistic-concurrency race; reaching it means something is wrong.
const maxConflicts = 1000

// apply decides cmd against st (nil for a new instance) and commits the
// outcome, deciding again on a fresh state after a conflict. ref is the task
// being completed, if any. A result that is stale only completes ref.
//
// The instance's lock is held from the decision until the transition is
// queued for the group commit on an exclusive store (where the decided
// state is recorded as pending and the next decision builds on it), or
// until it is committed on a shared store (where only the database can
// order writers).
func (e *Engine) apply(ctx context.Context, def *definition.Workflow, st *journal.State, cmd executor.Command, ref *ordostore.TaskRef) (*journal.State, bool, error) {
	return e.applyWith(ctx, def, st, cmd, ref, nil)
}

// applyWith is apply for a change that also consumes a kept message (a
// receive step taking it): if the message is gone or taken, nothing is
// written and the error wraps ordotype.ErrDuplicate.
func (e *Engine) applyWith(ctx context.Context, def *definition.Workflow, st *journal.State, cmd executor.Command, ref *ordostore.TaskRef, consume *ordostore.ConsumeRef) (*journal.State, bool, error) {
	return e.applyTaking(ctx, def, st, cmd, ref, consume, nil)
}

// applyTaking is applyWith for a completion that also takes, for a remote
// worker, tasks it makes ready (take; see takeNext): when it commits,
// take.tasks holds them, leased to the worker and journaled as started in
// the same transition.
func (e *Engine) applyTaking(ctx context.Context, def *definition.Workflow, st *journal.State, cmd executor.Command, ref *ordostore.TaskRef, consume *ordostore.ConsumeRef, take *taking) (*journal.State, bool, error) {
	id := ""
	if st != nil {
		id = st.ID
	}
	// stored: decide on the state read from the store rather than on a
	// change of this process still on its way there (see below).
	stored := false
	for range maxConflicts {
		release := func() {}
		pending := false
		if id != "" {
			unlock := e.locks.lock(id)
			once := false
			release = func() {
				if !once {
					once = true
					unlock()
				}
			}
			// Under the lock the cache holds this process's latest decision
			// for the instance: decide on it rather than on what the caller
			// read before its handler ran.
			if cdef, cst, p := e.cache.latest(id); !stored && cst != nil && cst.Seq > st.Seq {
				def, st, pending = cdef, cst, p
			}
		}
		now := e.clock.Now().UTC()
		dec, err := executor.Decide(ctx, def, st, cmd, now, e.rand)
		stale := false
		if err != nil {
			if executor.IsStale(err) && pending {
				// Stale against a change decided but not stored yet, which
				// may not hold (a result presented with an older claim is
				// refused at commit). Completing ref as stale on its word
				// would lose this result, and a claim would be dropped;
				// decide on the stored state instead. If the change holds,
				// this transition conflicts and is decided again on it.
				release()
				if def, st, err = e.load(ctx, id, true); err != nil {
					return nil, false, err
				}
				stored = true
				continue
			}
			if !executor.IsStale(err) || ref == nil {
				release()
				return nil, false, err
			}
			stale = true
			dec = &executor.Decision{State: st}
		}
		if take != nil {
			dec = e.takeNext(ctx, def, dec, now, take, stale)
		}
		tr, local := e.build(st, dec, ref, now, take)
		if !stale {
			tr.Consume = consume
		}
		req, err := e.commit.submit(ctx, tr)
		if err != nil {
			release()
			e.unreserve(local)
			return nil, false, err
		}
		if e.exclusive && id != "" && len(dec.Events) > 0 {
			e.cache.setPending(id, def, dec.State)
			release()
		}
		res, err := e.commit.wait(req)
		if err == nil {
			err = res.Err
		}
		switch {
		case err == nil:
			if take != nil {
				for _, i := range take.idx {
					tr.Tasks[i].ID = res.TaskIDs[i]
					take.tasks = append(take.tasks, tr.Tasks[i])
				}
			}
			ended := e.afterCommit(def, st, dec.State, res, tr.Tasks, local)
			e.wakePollers(tr.Tasks)
			release()
			if e.obs != nil && len(dec.Events) > 0 {
				e.obs(st, dec.State, dec.Events)
			}
			if ended {
				// After the observer, so that a caller of Wait sees the
				// metrics of the end it waited for.
				e.notify(dec.State)
			}
			if stale {
				e.m.duplicates.Add(1)
			}
			return dec.State, stale, nil
		case errors.Is(err, ordotype.ErrConflict):
			e.unreserve(local)
			e.m.conflicts.Add(1)
			e.cache.drop(id)
			release()
			stored = false
			def, st, err = e.load(ctx, id, true)
			if err != nil {
				return nil, false, err
			}
			continue
		case errors.Is(err, ordotype.ErrDuplicate):
			e.unreserve(local)
			e.cache.drop(id)
			release()
			e.m.duplicates.Add(1)
			return st, true, nil
		case errors.Is(err, ordotype.ErrAlreadyExists):
			e.unreserve(local)
			release()
			return nil, false, &existsError{id: res.ExistingID}
		default:
			e.unreserve(local)
			if id != "" {
				e.cache.drop(id)
			}
			release()
			return nil, false, err
		}
	}
	return nil, false, fmt.Errorf("instance %s: gave up after %d conflicting writers", id, maxConflicts)
}

// localTask is a task of a transition leased to this process at insert time,
// or (poller set) to a remote worker waiting in this process.
type localTask struct {
	pool   *pool
	poller *poller
	task   *ordostore.Task
	idx    int // index in the transition's Tasks
}

func (e *Engine) build(st *journal.State, dec *executor.Decision, ref *ordostore.TaskRef, now time.Time, take *taking) (*ordostore.Transition, []localTask) {
	ns := dec.State
	stateJSON := ns.AppendJSON(make([]byte, 0, 1024))
	tr := &ordostore.Transition{Complete: ref}
	if st == nil {
		tr.Create = &ordostore.Instance{
			ID: ns.ID, Workflow: ns.Workflow, Version: ns.Version, Status: ns.Status,
			IdempotencyKey: ns.IdempotencyKey, BusinessKey: ns.BusinessKey, ParentID: ns.ParentID,
			Seq: ns.Seq, State: stateJSON, CreatedAt: ns.CreatedAt, UpdatedAt: ns.UpdatedAt, FinishedAt: ns.FinishedAt,
		}
	} else {
		tr.InstanceID = st.ID
		tr.ExpectedSeq = st.Seq
		tr.Update = &ordostore.InstanceUpdate{
			Status: ns.Status, BusinessKey: ns.BusinessKey, Seq: ns.Seq, State: stateJSON,
			UpdatedAt: ns.UpdatedAt, FinishedAt: ns.FinishedAt,
		}
	}
	if len(dec.Events) > 0 {
		tr.Events = make([]*ordostore.Event, len(dec.Events))
		for i, ev := range dec.Events {
			data := journal.MarshalData(ev)
			tr.Events[i] = &ordostore.Event{
				InstanceID: ns.ID, Seq: ev.Seq, Type: string(ev.Type), StepID: ev.Step,
				Attempt: ev.Attempt, Data: data, CreatedAt: ev.Time,
			}
		}
	}
	for _, c := range dec.Cancel {
		tr.Cancel = append(tr.Cancel, ordostore.TaskMatch{Queue: c.Queue, StepID: c.Step, Attempt: c.Attempt})
	}
	var local []localTask
	if len(dec.Tasks) > 0 {
		tr.Tasks = make([]*ordostore.Task, len(dec.Tasks))
		for i, nt := range dec.Tasks {
			t := &ordostore.Task{
				InstanceID: ns.ID, Kind: nt.Kind, Queue: nt.Queue, StepID: nt.Step, Attempt: nt.Attempt,
				Payload: nt.Payload, DueAt: nt.DueAt, CreatedAt: now,
			}
			tr.Tasks[i] = t
			if k := take.index(i); k >= 0 {
				t.LeaseOwner = workerPrefix + take.worker
				t.LeaseUntil = take.leases[k]
				t.Claim = 1
			} else if p := e.poolFor(nt.Kind, nt.Queue); p != nil && !nt.DueAt.After(now) && !e.stopping.Load() && p.tryReserve() {
				t.LeaseOwner = e.node
				t.LeaseUntil = now.Add(e.lease)
				local = append(local, localTask{pool: p, task: t, idx: i})
			} else if w := e.offerRemote(t, now); w != nil {
				local = append(local, localTask{poller: w, task: t, idx: i})
			}
		}
	}
	return tr, local
}

func (e *Engine) poolFor(kind ordotype.TaskKind, queue string) *pool {
	switch kind {
	case ordotype.TaskStep:
		if e.steps.has(queue) {
			return e.steps
		}
	case ordotype.TaskEffect:
		if e.roles.effects {
			return e.effects
		}
	case ordotype.TaskReceive:
		if e.roles.executor {
			return e.waits
		}
	case ordotype.TaskAdmit:
		if e.roles.executor {
			return e.admits
		}
	}
	return nil
}

// pools returns every pool of the engine.
func (e *Engine) pools() []*pool { return []*pool{e.steps, e.effects, e.waits, e.admits} }

func (e *Engine) unreserve(local []localTask) {
	for _, lt := range local {
		if lt.poller != nil {
			e.remote.withdraw(lt.poller)
			continue
		}
		lt.pool.unreserve(1)
	}
}

// afterCommit hands a committed transition's tasks on and caches its state.
// It reports whether the instance came to an end (or to review), for its
// waiters to be told.
func (e *Engine) afterCommit(def *definition.Workflow, before, after *journal.State, res ordostore.TransitionResult, tasks []*ordostore.Task, local []localTask) bool {
	for _, lt := range local {
		lt.task.ID = res.TaskIDs[lt.idx]
		if lt.poller != nil {
			e.remote.deliver(lt.poller, lt.task)
			continue
		}
		lt.task.Claim = 0
		lt.pool.push(lt.task)
	}
	now := e.clock.Now()
	for _, t := range tasks {
		if t.LeaseOwner == "" && e.schedules(t) && e.rearms(t, now) {
			e.poke() // a task for the scheduler to claim, or one due sooner than it waits for
			break
		}
	}
	e.cache.commit(after.ID, def, after)
	return (before == nil || before.Status != after.Status) &&
		(after.Status.Terminal() || after.Status == ordotype.StatusReview)
}

// schedules reports whether this process's scheduler may claim t (now or
// when it is due): not for a task of a remote queue or a human task, which
// wait for a worker or a person (pollers are woken by wakePollers). Waking
// the scheduler for those would run a claim query per pool for nothing.
func (e *Engine) schedules(t *ordostore.Task) bool {
	if t.Kind == ordotype.TaskStep && !e.steps.has(t.Queue) && (remoteQueue(t.Queue) || t.Queue == executor.QueueHuman) {
		return false
	}
	return true
}

// rearms reports whether a task committed unleased needs the scheduler
// woken: it is due now, or before the due time the scheduler sleeps until
// (see scheduler). A task for later than that is found when it wakes.
func (e *Engine) rearms(t *ordostore.Task, now time.Time) bool {
	if !t.DueAt.After(now) {
		return true
	}
	armed := e.armed.Load()
	return armed == 0 || t.DueAt.UnixNano() < armed
}

// poke wakes the scheduler.
func (e *Engine) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Wait blocks until the instance is terminal or parked for review, and
// returns its state. An instance this process is running is not read from
// the store: its final state comes with the notification of its last commit.
func (e *Engine) Wait(ctx context.Context, id string) (*journal.State, error) {
	ch := make(chan *journal.State, 1)
	e.waitMu.Lock()
	e.waiters[id] = append(e.waiters[id], ch)
	e.waitMu.Unlock()
	defer e.unwait(id, ch)
	// Registered before looking: a commit that ends the instance from now
	// on notifies ch. The cache holds only instances that have not ended.
	_, cached := e.cache.get(id)
	for {
		if cached == nil || cached.Status.Terminal() || cached.Status == ordotype.StatusReview {
			st, err := e.readState(ctx, id)
			if err != nil {
				return nil, err
			}
			if st.Status.Terminal() || st.Status == ordotype.StatusReview {
				return st, nil
			}
		}
		cached = nil
		// Another process may end it: look again now and then. This is a
		// real-time poll of the store, not a wait in workflow time, so it
		// does not go through the engine's clock.
		t := time.NewTimer(e.poll)
		select {
		case st := <-ch:
			t.Stop()
			return st, nil
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

// readState reads an instance's state from the store.
func (e *Engine) readState(ctx context.Context, id string) (*journal.State, error) {
	inst, err := e.store.GetInstance(ctx, id)
	if err != nil {
		if errors.Is(err, ordotype.ErrNotFound) {
			return nil, fmt.Errorf("instance %q: %w", id, ordotype.ErrNotFound)
		}
		return nil, &storeError{err}
	}
	st, err := journal.DecodeState(inst.State)
	if err != nil {
		return nil, fmt.Errorf("instance %s: decoding state: %w", id, err)
	}
	return st, nil
}

func (e *Engine) unwait(id string, ch chan *journal.State) {
	e.waitMu.Lock()
	defer e.waitMu.Unlock()
	ws := e.waiters[id]
	for i, w := range ws {
		if w == ch {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(e.waiters, id)
	} else {
		e.waiters[id] = ws
	}
}

func (e *Engine) notify(st *journal.State) {
	e.waitMu.Lock()
	for _, ch := range e.waiters[st.ID] {
		select {
		case ch <- st:
		default:
		}
	}
	e.waitMu.Unlock()
}

// SystemClock is the real clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer returns a real timer.
func (SystemClock) NewTimer(d time.Duration) ordotype.Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time { return t.t.C }
func (t sysTimer) Stop() bool          { return t.t.Stop() }
