// Package ordostore defines the interface between Ordo's engine and the
// database that holds its journal. A driver (ordosqlite, ordopostgres)
// implements [Store]; the conformance suite in ordostore/ordostoretest is the
// contract every driver must pass.
//
// The interface is owned by the engine and may change between minor versions
// until Ordo reaches 1.0. Drivers are thin: they store and fetch, and never
// decide anything about a workflow.
package ordostore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/ordoflow/ordo/ordotype"
)

// Store is a database driver for Ordo.
//
// All methods are safe for concurrent use. Errors are translated into the
// sentinels of package ordotype where one applies (ErrNotFound, ErrConflict,
// ErrDuplicate, ErrAlreadyExists, ErrClosed).
type Store interface {
	// DatabaseName returns the name of the database: "sqlite" or "postgres".
	DatabaseName() string

	// Exclusive reports whether this store is used by one process only (an
	// SQLite file is locked by the process that opened it). An exclusive
	// store lets the engine take back every lease at start, because no other
	// live process can hold one.
	Exclusive() bool

	// Close releases the store's connections. It is safe to call twice.
	Close() error

	// PutDefinition stores a workflow definition. When the latest version
	// of the same name has the same hash, it is returned with created=false
	// and nothing is written; otherwise a new version (latest+1, starting at
	// 1) is inserted and returned with created=true.
	PutDefinition(ctx context.Context, params *PutDefinitionParams) (def *Definition, created bool, err error)

	// GetDefinition returns one version of a definition; Version 0 means the
	// latest. Returns ordotype.ErrNotFound if there is none.
	GetDefinition(ctx context.Context, name string, version int) (*Definition, error)

	// ListDefinitions returns the latest version of every definition, by name.
	ListDefinitions(ctx context.Context) ([]*Definition, error)

	// Apply writes a batch of transitions in one database transaction and
	// makes it durable before it returns (one commit, one fsync: this is the
	// group commit). Each transition is atomic on its own: one whose
	// precondition fails (ErrConflict, ErrDuplicate, ErrAlreadyExists) writes
	// nothing and is reported in its result, and the others still commit.
	//
	// The returned slice has one result per transition, in order. A non-nil
	// error means the whole batch failed and nothing was written.
	Apply(ctx context.Context, batch []*Transition) ([]TransitionResult, error)

	// GetInstance returns an instance's read model. Returns
	// ordotype.ErrNotFound if there is none.
	GetInstance(ctx context.Context, id string) (*Instance, error)

	// GetInstanceByKey returns the instance of a workflow with the given
	// idempotency key. Returns ordotype.ErrNotFound if there is none.
	GetInstanceByKey(ctx context.Context, workflow, idempotencyKey string) (*Instance, error)

	// ListInstances returns instances matching the filters, newest first.
	ListInstances(ctx context.Context, params *ListInstancesParams) ([]*Instance, error)

	// ListEvents returns an instance's journal in sequence order, starting
	// after AfterSeq. Returns an empty slice for an unknown instance.
	ListEvents(ctx context.Context, params *ListEventsParams) ([]*Event, error)

	// ClaimTasks leases up to Limit tasks that are due (DueAt <= Now) and not
	// leased (no owner, or a lease that ended before Now), oldest due first,
	// to Owner until LeaseUntil. Each claim increments the task's Claim
	// counter; a completion must present the counter it was given.
	ClaimTasks(ctx context.Context, params *ClaimTasksParams) ([]*Task, error)

	// NextTaskDue returns the earliest DueAt among tasks matching the filter
	// that are not leased, or ok=false when there are none.
	NextTaskDue(ctx context.Context, params *NextTaskDueParams) (due time.Time, ok bool, err error)

	// ReleaseLeases clears the lease of every task (Owner == "") or of every
	// task leased to Owner, so they can be claimed again at once. It returns
	// how many leases it cleared.
	ReleaseLeases(ctx context.Context, owner string) (int, error)

	// CountTasks returns how many tasks match the filter, leased or not.
	CountTasks(ctx context.Context, params *CountTasksParams) (int, error)

	// ExtendLeases moves the lease of the tasks among IDs that are still
	// leased to Owner to end at Until (the heartbeat of work that takes
	// long), and returns how many it extended. A task that is gone or
	// leased to another owner is left alone.
	ExtendLeases(ctx context.Context, params *ExtendLeasesParams) (int, error)

	// PutMessage keeps a message until a receive step consumes it or it
	// expires, and returns it with its ID. A message whose Name and
	// MessageID are already kept (consumed or not) is a duplicate: nothing
	// is written and the error wraps ordotype.ErrAlreadyExists.
	PutMessage(ctx context.Context, m *Message) (*Message, error)

	// ListMessages returns the unconsumed, unexpired messages with a name
	// and correlation key, oldest first.
	ListMessages(ctx context.Context, params *ListMessagesParams) ([]*Message, error)

	// ExpireMessages deletes up to limit messages that expired before now
	// and returns the unconsumed ones among them (dropped without being
	// delivered) and how many it deleted in all.
	ExpireMessages(ctx context.Context, now time.Time, limit int) (dropped []*Message, deleted int, err error)

	// AcquireSlot gives Holder one of the Limit slots of Group if one is
	// free (or if Holder has one already) and reports whether it did. The
	// check and the take are atomic across every process on the store.
	AcquireSlot(ctx context.Context, params *AcquireSlotParams) (bool, error)

	// ReleaseSlot frees Holder's slot in Group, if it has one.
	ReleaseSlot(ctx context.Context, group, holder string) error

	// ListTasks returns the tasks matching the filter, leased or not, in ID
	// order, starting after AfterID.
	ListTasks(ctx context.Context, params *ListTasksParams) ([]*Task, error)

	// GetTask returns one task. When there is none it returns an error
	// wrapping ordotype.ErrNotFound, which also wraps ordotype.ErrDuplicate
	// when a task had this ID and is gone (done): IDs are never reused.
	GetTask(ctx context.Context, id int64) (*Task, error)

	// PruneInstances deletes the instances in a finished status
	// ([PrunableStatuses]) whose FinishedAt is before params.FinishedBefore,
	// with their journals and tasks, in transactions of at most
	// params.Batch instances each, and returns how many it deleted (with
	// DryRun: how many it would delete). An error after some batches
	// committed returns the count deleted so far with it.
	PruneInstances(ctx context.Context, params *PruneParams) (int, error)

	// CountInstances returns how many instances there are per workflow and
	// status, for the statuses in params (all statuses when none are
	// given), ordered by workflow then status. Pairs with no instance are
	// left out. See counts.go.
	CountInstances(ctx context.Context, params *CountInstancesParams) ([]InstanceCount, error)

	// CountQueues returns how many tasks (leased or not, due or not) there
	// are per kind and queue, and how many of them hold a lease that ended
	// before params.Now (their owner did not finish them in time; they are
	// claimed again), ordered by kind then queue. Queues with no task are
	// left out.
	CountQueues(ctx context.Context, params *CountQueuesParams) ([]QueueCount, error)
}

// ListTasksParams are the filters of [Store.ListTasks]. Zero values do not
// filter.
type ListTasksParams struct {
	Kinds      []ordotype.TaskKind
	Queues     []string
	InstanceID string
	// AfterID pages forward: only tasks whose ID is greater.
	AfterID int64
	// Limit defaults to 100.
	Limit int
}

// TaskGone is the error [Store.GetTask] returns for a task that existed and
// is done: it wraps both ordotype.ErrNotFound and ordotype.ErrDuplicate.
func TaskGone(id int64) error {
	return fmt.Errorf("task %d is done: %w", id, errGone)
}

var errGone = goneError{}

type goneError struct{}

func (goneError) Error() string { return "gone" }
func (goneError) Is(target error) bool {
	return target == ordotype.ErrNotFound || target == ordotype.ErrDuplicate
}

// TaskNotFound is the error [Store.GetTask] returns for an ID no task ever
// had.
func TaskNotFound(id int64) error {
	return fmt.Errorf("task %d: %w", id, ordotype.ErrNotFound)
}

// ExtendLeasesParams are the parameters of [Store.ExtendLeases].
type ExtendLeasesParams struct {
	Owner string
	IDs   []int64
	Until time.Time
}

// Definition is a stored, immutable version of a workflow definition.
type Definition struct {
	Name      string
	Version   int
	Hash      string // hex SHA-256 of Source
	Source    []byte // canonical JSON of the definition
	CreatedAt time.Time
}

// PutDefinitionParams are the parameters of [Store.PutDefinition].
type PutDefinitionParams struct {
	Name   string
	Hash   string
	Source []byte
	Now    time.Time
}

// Instance is the read model of one workflow instance: a fold of its journal,
// written in the same transaction as the events that changed it.
type Instance struct {
	ID             string
	Workflow       string
	Version        int
	Status         ordotype.Status
	IdempotencyKey string // "" when none
	BusinessKey    string // "" when none
	ParentID       string // "" when none
	Seq            int64  // sequence number of the last event
	State          []byte // the folded state, JSON
	CreatedAt      time.Time
	UpdatedAt      time.Time
	FinishedAt     time.Time // zero until the instance reaches a terminal status
}

// Event is one entry of an instance's journal.
type Event struct {
	InstanceID string
	Seq        int64
	Type       string
	StepID     string // "" for workflow-level events
	Attempt    int
	Data       []byte // JSON
	CreatedAt  time.Time
}

// Task is a unit of work created by a transition: a step to run, a side
// effect to perform, a timer to fire.
type Task struct {
	ID         int64
	InstanceID string
	Kind       ordotype.TaskKind
	Queue      string // who may run it: a handler or queue name
	StepID     string
	Attempt    int
	Payload    []byte // JSON, owned by the engine
	DueAt      time.Time
	LeaseOwner string    // "" when not leased
	LeaseUntil time.Time // zero when not leased
	Claim      int       // incremented at each claim; a completion presents it
	CreatedAt  time.Time
}

// Transition is one atomic change of one instance: events appended to its
// journal, its read model updated, the task that was done deleted, and the
// tasks it creates inserted.
type Transition struct {
	// Create, when set, inserts a new instance (its Seq must equal the
	// number of Events). If Create.IdempotencyKey is set and an instance of
	// the same workflow already has that key, nothing is written and the
	// result carries ErrAlreadyExists and the existing instance's ID.
	Create *Instance

	// InstanceID and ExpectedSeq identify the instance being advanced when
	// Create is nil. The transition applies only if the instance's Seq equals
	// ExpectedSeq (else ErrConflict).
	InstanceID  string
	ExpectedSeq int64

	// Events to append; their Seq must run from ExpectedSeq+1 (or 1 for a
	// new instance) without gaps.
	Events []*Event

	// Update, when set, is the instance's new read model (when Create is
	// nil). Its Seq must equal the Seq of the last event.
	Update *InstanceUpdate

	// Complete, when set, deletes a task that is done. If the task no
	// longer exists, or its Claim differs, nothing is written and the result
	// carries ErrDuplicate.
	Complete *TaskRef

	// Tasks to insert. A task inserted with a LeaseOwner is already leased
	// (the engine dispatches it in memory without claiming it).
	Tasks []*Task

	// Consume, when set, marks a kept message consumed by the instance. If
	// the message is gone or already consumed, nothing is written and the
	// result carries ErrDuplicate.
	Consume *ConsumeRef

	// Cancel deletes the instance's tasks that match, leased or not; none
	// matching is no error. They go after Complete's task is checked and
	// before Tasks are inserted, so they never touch the transition's own.
	// The engine cancels the timeout task of a step's delivery this way when
	// the delivery ends.
	Cancel []TaskMatch
}

// TaskMatch names tasks of one instance by queue, step and attempt.
type TaskMatch struct {
	Queue   string
	StepID  string
	Attempt int
}

// InstanceUpdate is the new read model of an instance.
type InstanceUpdate struct {
	Status      ordotype.Status
	BusinessKey string
	Seq         int64
	State       []byte
	UpdatedAt   time.Time
	FinishedAt  time.Time
}

// TaskRef identifies a claimed task.
type TaskRef struct {
	ID    int64
	Claim int
}

// TransitionResult is the outcome of one [Transition] in a batch.
type TransitionResult struct {
	// Err is nil when the transition was written, or an error wrapping one
	// of ordotype.ErrConflict, ErrDuplicate, ErrAlreadyExists, ErrNotFound,
	// or ErrInvalid when the transition is malformed (its events' Seq do not
	// run on without gaps, say); the other transitions of the batch still
	// commit.
	Err error
	// ExistingID is the ID of the instance that already has the
	// idempotency key, with ErrAlreadyExists.
	ExistingID string
	// TaskIDs are the IDs given to the transition's Tasks, in order.
	TaskIDs []int64
}

// ListInstancesParams are the filters of [Store.ListInstances]. Zero values
// do not filter.
type ListInstancesParams struct {
	Workflow      string
	Statuses      []ordotype.Status
	BusinessKey   string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	// BeforeID pages backwards: only instances whose ID sorts before it.
	BeforeID string
	// Limit defaults to 100.
	Limit int
}

// ListEventsParams are the parameters of [Store.ListEvents].
type ListEventsParams struct {
	InstanceID string
	AfterSeq   int64
	// Limit of 0 means all.
	Limit int
}

// ClaimTasksParams are the parameters of [Store.ClaimTasks].
type ClaimTasksParams struct {
	Owner      string
	Kinds      []ordotype.TaskKind // required
	Queues     []string            // nil means any queue
	Now        time.Time
	LeaseUntil time.Time
	Limit      int
}

// NextTaskDueParams are the parameters of [Store.NextTaskDue].
type NextTaskDueParams struct {
	Kinds  []ordotype.TaskKind // required
	Queues []string            // nil means any queue
}

// CountTasksParams are the parameters of [Store.CountTasks].
type CountTasksParams struct {
	InstanceID string              // "" for any
	Kinds      []ordotype.TaskKind // nil for any
}

// Check validates a transition before a driver writes anything of it and
// returns the ID of its instance. Errors wrap ordotype.ErrInvalid: the
// transition fails alone, and the rest of its batch is written. Drivers call
// it from Apply.
func (tr *Transition) Check() (string, error) {
	var (
		id    string
		first int64 // seq of the first event
	)
	if c := tr.Create; c != nil {
		id, first = c.ID, 1
		switch {
		case id == "":
			return "", fmt.Errorf("%w: Create.ID is empty", ordotype.ErrInvalid)
		case c.Workflow == "":
			return "", fmt.Errorf("%w: instance %s: Create.Workflow is empty", ordotype.ErrInvalid, id)
		case !c.Status.Valid():
			return "", fmt.Errorf("%w: instance %s: unknown status %q", ordotype.ErrInvalid, id, c.Status)
		case c.Seq != int64(len(tr.Events)):
			return "", fmt.Errorf("%w: instance %s: Create.Seq is %d but there are %d events", ordotype.ErrInvalid, id, c.Seq, len(tr.Events))
		}
		if tr.Consume != nil {
			return "", fmt.Errorf("%w: instance %s: a new instance cannot consume a message", ordotype.ErrInvalid, id)
		}
	} else {
		id, first = tr.InstanceID, tr.ExpectedSeq+1
		switch {
		case id == "":
			return "", fmt.Errorf("%w: transition has neither Create nor InstanceID", ordotype.ErrInvalid)
		case tr.ExpectedSeq < 0:
			return "", fmt.Errorf("%w: instance %s: negative ExpectedSeq %d", ordotype.ErrInvalid, id, tr.ExpectedSeq)
		}
		if u := tr.Update; u != nil {
			if want := tr.ExpectedSeq + int64(len(tr.Events)); u.Seq != want {
				return "", fmt.Errorf("%w: instance %s: Update.Seq is %d, want %d (the last event's)", ordotype.ErrInvalid, id, u.Seq, want)
			}
			if !u.Status.Valid() {
				return "", fmt.Errorf("%w: instance %s: unknown status %q", ordotype.ErrInvalid, id, u.Status)
			}
		}
	}
	for i, ev := range tr.Events {
		if want := first + int64(i); ev.Seq != want {
			return "", fmt.Errorf("%w: instance %s: event %d has seq %d, want %d", ordotype.ErrInvalid, id, i, ev.Seq, want)
		}
		if ev.InstanceID != "" && ev.InstanceID != id {
			return "", fmt.Errorf("%w: instance %s: event %d belongs to instance %s", ordotype.ErrInvalid, id, ev.Seq, ev.InstanceID)
		}
	}
	return id, nil
}

// Bounds of the times an int64 of Unix nanoseconds holds.
var (
	minNanosTime = time.Unix(0, math.MinInt64)
	maxNanosTime = time.Unix(0, math.MaxInt64)
)

// UnixNanos returns t as Unix nanoseconds, the form the drivers store times
// in: 0 for the zero time, and a time beyond what an int64 of nanoseconds
// holds (before 1678 or after 2262) clamped to the nearest end, so that a
// filter far in the past or future still compares the right way.
func UnixNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Before(minNanosTime):
		return math.MinInt64
	case t.After(maxNanosTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// FromUnixNanos is the inverse of [UnixNanos]: the time in UTC, or the zero
// time for 0.
func FromUnixNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
