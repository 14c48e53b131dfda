package ordo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ordoflow/ordo/internal/engine"
	"github.com/ordoflow/ordo/internal/executor"
	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/internal/testhook"
	"github.com/ordoflow/ordo/ordosqlite"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

func init() {
	testhook.EngineOf = func(v any) *engine.Engine { return v.(*Engine).eng }
}

// Config configures an [Engine]. A nil *Config means all defaults.
type Config struct {
	// Logger receives the engine's logs. Defaults to warn level on stdout.
	Logger *slog.Logger
	// Clock is how the engine reads time. Defaults to the system clock;
	// tests use ordotest's fake clock.
	Clock Clock
	// Workers is the number of goroutines running step handlers in this
	// process. Defaults to 64.
	Workers int
	// EffectWorkers is the number of goroutines performing side effects.
	// Defaults to 16.
	EffectWorkers int
	// LeaseDuration is how long a task claimed by this process is reserved
	// to it; a process that dies holds its tasks at most this long.
	// Defaults to 5 minutes.
	LeaseDuration time.Duration
	// PollInterval is how often the engine looks in the store for work it
	// was not told about. Defaults to 1 second.
	PollInterval time.Duration
	// MaxBatch caps the state changes written in one group commit.
	// Defaults to 512.
	MaxBatch int
	// HTTPClient makes the calls of http steps and http side effects.
	// Defaults to a client with a 30 second timeout.
	HTTPClient *http.Client
	// NodeID names this process in task leases. Defaults to
	// hostname-pid-random.
	NodeID string
	// Roles are the roles this process runs, of [RoleAPI], [RoleExecutor],
	// [RoleEffects] and [RoleTimers]; nil means all of them. A process
	// without a role leaves that work in the store for the processes that
	// have it, so anything but all roles needs a store shared by several
	// processes (PostgreSQL); see [ParseRoles] and docs/operations.md.
	Roles []string

	// Observer, when set, is told what the engine commits (for metrics).
	// See [Observer].
	Observer *Observer
	// TracerProvider, when set, traces each step attempt and side-effect
	// try of an instance that was started in a trace (a span in the ctx
	// given to [Engine.Start]), as a child of that trace. Instances
	// started outside a trace get no spans. Defaults to none.
	TracerProvider trace.TracerProvider
	// TaskLease is how long a task taken by a remote worker
	// ([Engine.PollTasks]) stays leased to it without a heartbeat; then it
	// is delivered again. Defaults to 30 seconds.
	TaskLease time.Duration
}

func (c *Config) validate() error {
	switch {
	case c.Workers < 0:
		return errors.New("ordo: Config.Workers must not be negative")
	case c.EffectWorkers < 0:
		return errors.New("ordo: Config.EffectWorkers must not be negative")
	case c.LeaseDuration < 0:
		return errors.New("ordo: Config.LeaseDuration must not be negative")
	case c.PollInterval < 0:
		return errors.New("ordo: Config.PollInterval must not be negative")
	case c.TaskLease < 0:
		return errors.New("ordo: Config.TaskLease must not be negative")
	case c.MaxBatch < 0:
		return errors.New("ordo: Config.MaxBatch must not be negative")
	}
	return nil
}

// Clock is how Ordo reads time. See ordotest.FakeClock.
type Clock = ordotype.Clock

// StoreOpener opens the store an engine runs on. See [SQLite].
type StoreOpener func(ctx context.Context) (ordostore.Store, error)

// SQLite returns a StoreOpener for an SQLite database file, created if it
// does not exist. The file is locked to one process while it is open.
func SQLite(path string) StoreOpener {
	return func(ctx context.Context) (ordostore.Store, error) {
		return ordosqlite.Open(ctx, path, nil)
	}
}

// Engine runs workflows. It is safe for concurrent use.
type Engine struct {
	eng       *engine.Engine
	store     ordostore.Store
	ownsStore bool
}

// Open opens a store and starts an engine on it. [Engine.Close] closes the
// store too.
//
//	eng, err := ordo.Open(ctx, ordo.SQLite("orders.db"), nil)
func Open(ctx context.Context, open StoreOpener, cfg *Config) (*Engine, error) {
	if open == nil {
		return nil, errors.New("ordo: missing store (try ordo.SQLite(\"ordo.db\"))")
	}
	store, err := open(ctx)
	if err != nil {
		return nil, fmt.Errorf("ordo: opening store: %w", err)
	}
	e, err := New(ctx, store, cfg)
	if err != nil {
		store.Close()
		return nil, err
	}
	e.ownsStore = true
	return e, nil
}

// New starts an engine on a store opened by the caller, who closes it after
// [Engine.Close].
func New(ctx context.Context, store ordostore.Store, cfg *Config) (*Engine, error) {
	if store == nil {
		return nil, errors.New("ordo: missing store (try ordosqlite.Open)")
	}
	if cfg == nil {
		cfg = &Config{}
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	eng, err := engine.New(ctx, cfg.observability(engine.Config{
		Store:         store,
		Clock:         cfg.Clock,
		Logger:        cfg.Logger,
		NodeID:        cfg.NodeID,
		Workers:       cfg.Workers,
		EffectWorkers: cfg.EffectWorkers,
		LeaseDuration: cfg.LeaseDuration,
		PollInterval:  cfg.PollInterval,
		MaxBatch:      cfg.MaxBatch,
		HTTPClient:    cfg.HTTPClient,
		Roles:         cfg.Roles,
		TaskLease:     cfg.TaskLease,
	}))
	if err != nil {
		return nil, fmt.Errorf("ordo: %w", err)
	}
	return &Engine{eng: eng, store: store}, nil
}

// Close stops the engine (see [Engine.Stop]) and closes the store if
// [Open] opened it. It is safe to call twice.
func (e *Engine) Close(ctx context.Context) error {
	err := e.eng.Stop(ctx)
	if e.ownsStore {
		err = errors.Join(err, e.store.Close())
	}
	return err
}

// Stop stops taking work: running steps and side effects finish and are
// committed, and tasks this process had leased but not started are handed
// back to the store at once. Nothing acknowledged is lost, and instances
// carry on when an engine is started on the store again.
func (e *Engine) Stop(ctx context.Context) error { return e.eng.Stop(ctx) }

// Store returns the engine's store.
func (e *Engine) Store() ordostore.Store { return e.store }

// Stats is a snapshot of the engine's counters.
type Stats = engine.Stats

// Stats returns the engine's counters since it started.
func (e *Engine) Stats() Stats { return e.eng.Stats() }

// Register stores def (as a new version if it changed) and registers the
// Go handlers its task steps name. Every task step must have a handler,
// given here or registered before with [Engine.Handle]; use [Engine.Deploy]
// for definitions whose steps are done by remote workers. It returns the
// definition's version.
func (e *Engine) Register(ctx context.Context, def *Definition, handlers Handlers) (int, error) {
	if def == nil {
		return 0, errors.New("ordo: Register: nil definition")
	}
	var missing []string
	for _, s := range def.w.Steps {
		key := s.HandlerKey()
		if key == "" {
			continue
		}
		if _, ok := handlers[key]; !ok && !e.eng.HasHandler(key) {
			missing = append(missing, fmt.Sprintf("step %q needs handler %q", s.ID, key))
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return 0, fmt.Errorf("ordo: Register %s: %v: %w", def.Name(), missing, ErrInvalid)
	}
	for name, h := range handlers {
		e.Handle(name, h)
	}
	return e.Deploy(ctx, def)
}

// Deploy stores def as a new version if it changed, without requiring
// handlers, and returns its version.
func (e *Engine) Deploy(ctx context.Context, def *Definition) (int, error) {
	d, err := e.DeployDefinition(ctx, def)
	if err != nil {
		return 0, err
	}
	return d.Version, nil
}

// Deployed is what [Engine.DeployDefinition] did.
type Deployed struct {
	Version int
	// Created is set when a new version was stored; false when the latest
	// version was identical and is returned.
	Created bool
}

// DeployDefinition is [Engine.Deploy] that also tells whether it stored a
// new version. Of concurrent deploys of one new definition, exactly one
// reports Created.
func (e *Engine) DeployDefinition(ctx context.Context, def *Definition) (*Deployed, error) {
	if def == nil {
		return nil, errors.New("ordo: Deploy: nil definition")
	}
	v, created, err := e.eng.PutDefinition(ctx, def.w)
	if err != nil {
		return nil, err
	}
	return &Deployed{Version: v, Created: created}, nil
}

// Handle registers h as the Go handler for a handler name or queue name.
// Task steps name it with `task: {handler: name}` or `task: {queue: name}`.
func (e *Engine) Handle(name string, h Handler) {
	e.eng.RegisterHandler(name, adaptHandler(h))
}

// HandleEffect registers the interpreter of side effects of type typ,
// replacing any built-in one.
func (e *Engine) HandleEffect(typ string, fn EffectFunc) {
	e.eng.RegisterEffect(typ, func(ctx context.Context, c *engine.EffectCall) error {
		return fn(ctx, &EffectRequest{
			InstanceID: c.InstanceID, Step: c.Step, Index: c.Index, Type: c.Type,
			Payload: c.Payload, IdempotencyKey: c.IdempotencyKey, Attempt: c.Attempt,
		})
	})
}

// StartOption modifies a call to [Engine.Start].
type StartOption func(*engine.StartParams)

// IdempotencyKey sets the instance's idempotency key, overriding the
// definition's idempotencyKey expression: a second start with the same key
// returns the first instance and starts nothing.
func IdempotencyKey(key string) StartOption {
	return func(p *engine.StartParams) { p.IdempotencyKey = key }
}

// BusinessKey sets the instance's business key (an order number, say),
// overriding the definition's businessKey expression.
func BusinessKey(key string) StartOption {
	return func(p *engine.StartParams) { p.BusinessKey = key }
}

// Version starts the instance on a given version of the definition instead
// of the latest.
func Version(v int) StartOption {
	return func(p *engine.StartParams) { p.Version = v }
}

// Start starts an instance of a workflow with input, which is JSON
// ([]byte, json.RawMessage) or any value encoding/json can marshal. It
// returns the instance ID. When the idempotency key was used before, it
// returns the existing instance's ID and starts nothing.
//
// Errors: [ErrNotFound] for an unknown workflow or version; [ErrInvalid]
// for input that is not JSON or keys that cannot be computed from it.
func (e *Engine) Start(ctx context.Context, workflow string, input any, opts ...StartOption) (string, error) {
	s, err := e.StartInstance(ctx, workflow, input, opts...)
	if err != nil {
		return "", err
	}
	return s.ID, nil
}

// Started is what [Engine.StartInstance] did.
type Started struct {
	// ID is the instance's ID.
	ID string
	// Existed is set when the idempotency key had been used before: no
	// instance was started, and ID is the first one's.
	Existed bool
}

// StartInstance is [Engine.Start] that also tells whether the instance
// already existed (its idempotency key, given or computed by the
// definition's idempotencyKey, was used before). Of concurrent starts with
// one new key, exactly one reports Existed false.
func (e *Engine) StartInstance(ctx context.Context, workflow string, input any, opts ...StartOption) (*Started, error) {
	raw, err := toJSON(input)
	if err != nil {
		return nil, fmt.Errorf("ordo: start %s: input: %v: %w", workflow, err, ErrInvalid)
	}
	p := engine.StartParams{Workflow: workflow, Input: raw}
	for _, o := range opts {
		o(&p)
	}
	id, existed, err := e.eng.Start(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("ordo: start %s: %w", workflow, err)
	}
	return &Started{ID: id, Existed: existed}, nil
}

func toJSON(v any) (json.RawMessage, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		return x, nil
	case []byte:
		return x, nil
	case string:
		return json.Marshal(x)
	}
	return json.Marshal(v)
}

// Get returns an instance: its status, state, output and each step's status.
// Errors: [ErrNotFound].
func (e *Engine) Get(ctx context.Context, id string) (*Instance, error) {
	inst, err := e.store.GetInstance(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("ordo: get %s: %w", id, err)
	}
	return e.instance(ctx, inst)
}

// fromState builds the public Instance of a folded state.
func (e *Engine) fromState(ctx context.Context, st *journal.State) (*Instance, error) {
	inst := &Instance{
		ID: st.ID, Workflow: st.Workflow, Version: st.Version, Status: st.Status,
		IdempotencyKey: st.IdempotencyKey, BusinessKey: st.BusinessKey, ParentID: st.ParentID, ParentStep: st.ParentStep,
		Input: st.Input, State: st.Data, Output: st.Output, Error: publicError(st.Error),
		Seq: st.Seq, CreatedAt: st.CreatedAt, UpdatedAt: st.UpdatedAt, FinishedAt: st.FinishedAt,
	}
	def, _, err := e.eng.Definition(ctx, st.Workflow, st.Version)
	if err != nil {
		return nil, fmt.Errorf("ordo: instance %s: %w", st.ID, err)
	}
	inst.Steps = make([]StepInfo, 0, len(def.Steps))
	add := func(id string, ss *journal.StepState) {
		info := StepInfo{ID: id, Status: ordotype.StepPending}
		if ss != nil {
			info.Status, info.Attempt = ss.Status, ss.Attempt
			info.Input, info.Output, info.Error = ss.Input, ss.Output, publicError(ss.Error)
			info.Reason, info.StartedAt, info.FinishedAt = ss.Reason, ss.StartedAt, ss.FinishedAt
			info.Child, info.Key, info.MessageID = ss.Child, ss.Key, ss.MessageID
		}
		inst.Steps = append(inst.Steps, info)
	}
	for _, s := range def.Steps {
		add(s.ID, st.Steps[s.ID])
	}
	// Compensations that ran follow, in the order of their steps.
	for _, s := range def.Steps {
		if c := s.Compensate; c != nil {
			if ss := st.Steps[c.ID]; ss != nil {
				add(c.ID, ss)
			}
		}
	}
	return inst, nil
}

// Wait blocks until the instance has ended (completed, failed, compensated,
// cancelled) or is parked for review, and returns it.
func (e *Engine) Wait(ctx context.Context, id string) (*Instance, error) {
	st, err := e.eng.Wait(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("ordo: wait %s: %w", id, err)
	}
	return e.fromState(ctx, st)
}

// SendOptions are the options of [Engine.Send].
type SendOptions struct {
	// MessageID identifies the message: sending a message with the same
	// name and ID again does nothing. A new ID is made when empty.
	MessageID string
	// TTL is how long the message waits for a receive step when none waits
	// for it yet. Defaults to 24 hours.
	TTL time.Duration
}

// SendResult is what [Engine.Send] did.
type SendResult = engine.SendResult

// Send sends a message to the receive steps waiting for name with the
// correlation key key. It goes to the instance that has waited longest (or
// to every waiting instance, for a broadcast receive step); when none waits
// yet, it is kept for the TTL and taken by the first receive step that
// begins to wait for it. payload is encoded as JSON and becomes the receive
// step's output. opts may be nil.
func (e *Engine) Send(ctx context.Context, name, key string, payload any, opts *SendOptions) (*SendResult, error) {
	raw, err := toJSON(payload)
	if err != nil {
		return nil, fmt.Errorf("ordo: send %s: %w", name, err)
	}
	p := engine.SendParams{Name: name, Key: key, Payload: raw}
	if opts != nil {
		p.MessageID, p.TTL = opts.MessageID, opts.TTL
	}
	res, err := e.eng.Send(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("ordo: send %s: %w", name, err)
	}
	return res, nil
}

// ListParams filter [Engine.List]. Zero fields do not filter.
type ListParams struct {
	Workflow      string
	Statuses      []Status
	BusinessKey   string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	// BeforeID continues a listing after its last instance.
	BeforeID string
	// Limit defaults to 100.
	Limit int
}

// List returns instances, newest first.
func (e *Engine) List(ctx context.Context, p *ListParams) ([]*Instance, error) {
	if p == nil {
		p = &ListParams{}
	}
	rows, err := e.store.ListInstances(ctx, &ordostore.ListInstancesParams{
		Workflow: p.Workflow, Statuses: p.Statuses, BusinessKey: p.BusinessKey,
		CreatedAfter: p.CreatedAfter, CreatedBefore: p.CreatedBefore, BeforeID: p.BeforeID, Limit: p.Limit,
	})
	if err != nil {
		return nil, fmt.Errorf("ordo: list: %w", err)
	}
	out := make([]*Instance, 0, len(rows))
	for _, r := range rows {
		inst, err := e.instance(ctx, r)
		if err != nil {
			return nil, err
		}
		out = append(out, inst)
	}
	return out, nil
}

// Journal returns an instance's whole history, in order.
// Errors: [ErrNotFound].
func (e *Engine) Journal(ctx context.Context, id string) ([]Event, error) {
	if _, err := e.store.GetInstance(ctx, id); err != nil {
		return nil, fmt.Errorf("ordo: journal %s: %w", id, err)
	}
	rows, err := e.store.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: id})
	if err != nil {
		return nil, fmt.Errorf("ordo: journal %s: %w", id, err)
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[i] = Event{Seq: r.Seq, Type: r.Type, Step: r.StepID, Attempt: r.Attempt, Time: r.CreatedAt, Data: r.Data}
	}
	return out, nil
}

// ResubmitOptions modify [Engine.Resubmit].
type ResubmitOptions struct {
	// From is the step to start again from (it and every step after it are
	// reset). Defaults to the steps that failed.
	From string
	// Input, when set, replaces the workflow input.
	Input any
	// Reason is kept in the journal.
	Reason string
}

// Resubmit restarts an instance that is parked for review or failed, from
// the failed step or from opts.From, with a fresh retry budget.
// Errors: [ErrNotFound]; [ErrInvalid] when the instance is not in review or
// failed, or From is not a step of its workflow.
func (e *Engine) Resubmit(ctx context.Context, id string, opts *ResubmitOptions) error {
	if opts == nil {
		opts = &ResubmitOptions{}
	}
	cmd := executor.Resubmit{From: opts.From, Reason: opts.Reason}
	if opts.Input != nil {
		raw, err := toJSON(opts.Input)
		if err != nil || !json.Valid(raw) {
			return fmt.Errorf("ordo: resubmit %s: input is not valid JSON: %w", id, ErrInvalid)
		}
		cmd.Input = raw
	}
	if err := e.eng.Resubmit(ctx, id, cmd); err != nil {
		return fmt.Errorf("ordo: resubmit %s: %w", id, err)
	}
	return nil
}

// Cancel cancels an instance that has not ended.
// Errors: [ErrNotFound]; [ErrInvalid] when it has already ended.
func (e *Engine) Cancel(ctx context.Context, id, reason string) error {
	if err := e.eng.Cancel(ctx, id, reason); err != nil {
		return fmt.Errorf("ordo: cancel %s: %w", id, err)
	}
	return nil
}

// instance converts a read model into the public Instance.
func (e *Engine) instance(ctx context.Context, r *ordostore.Instance) (*Instance, error) {
	var st journal.State
	if err := json.Unmarshal(r.State, &st); err != nil {
		return nil, fmt.Errorf("ordo: instance %s: decoding state: %w", r.ID, err)
	}
	return e.fromState(ctx, &st)
}

func publicError(e *journal.Error) *Error {
	if e == nil {
		return nil
	}
	return &Error{Message: e.Message, Code: e.Code, Step: e.Step, Retryable: e.Retryable}
}
