package ordosqlite

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// Statements of Apply. The savepoint has one name: savepoints are released
// before the next transition starts, so they never nest.
const (
	sqlSavepoint  = `SAVEPOINT transition`
	sqlRelease    = `RELEASE transition`
	sqlRollbackTo = `ROLLBACK TO transition`

	// ON CONFLICT DO NOTHING covers both unique constraints: the ID and
	// (workflow, idempotency_key). A conflict is reported as 0 rows.
	sqlInsertInstance = `INSERT INTO instances
	(id, workflow, version, status, idempotency_key, business_key, parent_id, seq, state, created_at, updated_at, finished_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT DO NOTHING`
	sqlInstanceIDByKey = `SELECT id FROM instances WHERE workflow = ? AND idempotency_key = ?`

	sqlUpdateInstance = `UPDATE instances
	SET status = ?, business_key = ?, seq = ?, state = ?, updated_at = ?, finished_at = ?
	WHERE id = ? AND seq = ?`
	sqlUpdateInstanceSeq = `UPDATE instances SET seq = ? WHERE id = ? AND seq = ?`
	sqlInstanceSeq       = `SELECT seq FROM instances WHERE id = ?`

	sqlDeleteTask = `DELETE FROM tasks WHERE id = ? AND claim = ?`
	sqlInsertTask = `INSERT INTO tasks
	(instance_id, kind, queue, step_id, attempt, payload, due_at, lease_owner, lease_until, claim, created_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// maxEventRows is the most events one INSERT statement writes; a transition
// with more is written in chunks of this size.
const maxEventRows = 8

// sqlInsertEvents holds the INSERT statement for n events at index n.
var sqlInsertEvents = func() []string {
	queries := make([]string, maxEventRows+1)
	for n := 1; n <= maxEventRows; n++ {
		var b strings.Builder
		b.WriteString(`INSERT INTO events (instance_id, seq, type, step_id, attempt, data, created_at) VALUES `)
		for i := range n {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
		}
		queries[n] = b.String()
	}
	return queries
}()

// Apply writes a batch of transitions in one transaction, each inside its
// own savepoint, and commits once; see [ordostore.Store.Apply].
//
// For each transition it deletes the completed task (ErrDuplicate if it is
// gone or its claim differs), then inserts the new instance (ErrAlreadyExists
// if its idempotency key or its ID is taken) or advances the existing one
// only if its seq is ExpectedSeq (ErrConflict, or ErrNotFound if there is no
// such instance), then appends the events and inserts the tasks. A
// transition whose events do not run on from the instance's seq, or whose
// new seq is not that of its last event, is rejected with an error wrapping
// ordotype.ErrInvalid. An event or task with an empty InstanceID belongs to
// the transition's instance.
//
// Apply returns an error, and writes nothing, if ctx ends before the commit
// or the database fails. Once the commit has started, ctx no longer stops
// it; it is durable when Apply returns.
func (s *Store) Apply(ctx context.Context, batch []*ordostore.Transition) ([]ordostore.TransitionResult, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	results := make([]ordostore.TransitionResult, len(batch))
	if len(batch) == 0 {
		return results, nil
	}
	err := s.inWriteTx(ctx, func(stmts *txStmts) error {
		for i, tr := range batch {
			if err := applyOne(ctx, stmts, tr, &results[i]); err != nil {
				return fmt.Errorf("transition %d of %d: %w", i+1, len(batch), err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("apply batch: %w", err)
	}
	return results, nil
}

// applyOne writes one transition inside a savepoint. A failed precondition
// rolls the savepoint back and is reported in res; any other error is
// returned and fails the batch.
func applyOne(ctx context.Context, stmts *txStmts, tr *ordostore.Transition, res *ordostore.TransitionResult) error {
	id, err := checkTransition(tr)
	if err != nil {
		res.Err = err
		return nil
	}
	if _, err := stmts.exec(ctx, sqlSavepoint); err != nil {
		return err
	}
	err = writeTransition(ctx, stmts, tr, id, res)
	if err == nil {
		_, err = stmts.exec(ctx, sqlRelease)
		return err
	}
	if !isPrecondition(err) {
		return err
	}
	if _, rerr := stmts.exec(ctx, sqlRollbackTo); rerr != nil {
		return rerr
	}
	if _, rerr := stmts.exec(ctx, sqlRelease); rerr != nil {
		return rerr
	}
	res.Err = err
	res.TaskIDs = nil
	return nil
}

// isPrecondition reports whether err fails one transition rather than the
// whole batch.
func isPrecondition(err error) bool {
	return errors.Is(err, ordotype.ErrConflict) ||
		errors.Is(err, ordotype.ErrDuplicate) ||
		errors.Is(err, ordotype.ErrAlreadyExists) ||
		errors.Is(err, ordotype.ErrNotFound) ||
		errors.Is(err, ordotype.ErrInvalid)
}

// checkTransition validates a transition before anything is written and
// returns the ID of its instance.
func checkTransition(tr *ordostore.Transition) (string, error) {
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

// writeTransition runs the statements of one checked transition.
func writeTransition(ctx context.Context, stmts *txStmts, tr *ordostore.Transition, id string, res *ordostore.TransitionResult) error {
	if c := tr.Complete; c != nil {
		n, err := stmts.exec(ctx, sqlDeleteTask, c.ID, c.Claim)
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("complete task %d with claim %d: %w", c.ID, c.Claim, ordotype.ErrDuplicate)
		}
	}

	var err error
	if tr.Create != nil {
		err = createInstance(ctx, stmts, tr.Create, res)
	} else {
		err = advanceInstance(ctx, stmts, tr)
	}
	if err != nil {
		return err
	}

	if err := insertEvents(ctx, stmts, id, tr.Events); err != nil {
		return err
	}

	if len(tr.Tasks) > 0 {
		res.TaskIDs = make([]int64, len(tr.Tasks))
	}
	for i, t := range tr.Tasks {
		taskID, err := insertTask(ctx, stmts, id, t)
		if err != nil {
			return err
		}
		res.TaskIDs[i] = taskID
	}
	return nil
}

// createInstance inserts a new instance. If its idempotency key (or its ID)
// is taken it returns ErrAlreadyExists and sets res.ExistingID.
func createInstance(ctx context.Context, stmts *txStmts, c *ordostore.Instance, res *ordostore.TransitionResult) error {
	n, err := stmts.exec(ctx, sqlInsertInstance,
		c.ID, c.Workflow, c.Version, string(c.Status),
		nullString(c.IdempotencyKey), nullString(c.BusinessKey), nullString(c.ParentID),
		c.Seq, c.State, toNanos(c.CreatedAt), toNanos(c.UpdatedAt), nullNanos(c.FinishedAt))
	if err != nil {
		return interpretError(err)
	}
	if n == 1 {
		return nil
	}
	res.ExistingID = c.ID
	if c.IdempotencyKey != "" {
		var existing string
		err := stmts.scan(ctx, sqlInstanceIDByKey, []any{c.Workflow, c.IdempotencyKey}, &existing)
		if err == nil {
			res.ExistingID = existing
			return fmt.Errorf("instance of %s with idempotency key %q: %w", c.Workflow, c.IdempotencyKey, ordotype.ErrAlreadyExists)
		}
		if !isNoRows(err) {
			return err
		}
	}
	return fmt.Errorf("instance %s: %w", c.ID, ordotype.ErrAlreadyExists)
}

// advanceInstance moves an existing instance from ExpectedSeq to its new
// seq, or checks that it is at ExpectedSeq when the transition appends
// nothing and has no update.
func advanceInstance(ctx context.Context, stmts *txStmts, tr *ordostore.Transition) error {
	var (
		n   int64
		err error
	)
	switch u := tr.Update; {
	case u != nil:
		n, err = stmts.exec(ctx, sqlUpdateInstance,
			string(u.Status), nullString(u.BusinessKey), u.Seq, u.State, toNanos(u.UpdatedAt), nullNanos(u.FinishedAt),
			tr.InstanceID, tr.ExpectedSeq)
	case len(tr.Events) > 0:
		n, err = stmts.exec(ctx, sqlUpdateInstanceSeq, tr.ExpectedSeq+int64(len(tr.Events)), tr.InstanceID, tr.ExpectedSeq)
	}
	if err != nil {
		return interpretError(err)
	}
	if n == 1 {
		return nil
	}
	// Nothing was updated: either the precondition failed, or the transition
	// changes nothing on the instance and only its seq must be checked. The
	// writer holds the write lock, so the seq read here holds until commit.
	var seq int64
	if err := stmts.scan(ctx, sqlInstanceSeq, []any{tr.InstanceID}, &seq); err != nil {
		if isNoRows(err) {
			return fmt.Errorf("instance %s: %w", tr.InstanceID, ordotype.ErrNotFound)
		}
		return err
	}
	if seq != tr.ExpectedSeq {
		return fmt.Errorf("instance %s is at seq %d, expected %d: %w", tr.InstanceID, seq, tr.ExpectedSeq, ordotype.ErrConflict)
	}
	return nil
}

// insertEvents appends events to the journal of instance id, up to
// maxEventRows per statement. A (instance, seq) that is already taken is
// ErrConflict.
func insertEvents(ctx context.Context, stmts *txStmts, id string, events []*ordostore.Event) error {
	for len(events) > 0 {
		chunk := events[:min(len(events), maxEventRows)]
		events = events[len(chunk):]
		args := make([]any, 0, len(chunk)*7)
		for _, ev := range chunk {
			args = append(args, id, ev.Seq, ev.Type, ev.StepID, ev.Attempt, ev.Data, toNanos(ev.CreatedAt))
		}
		if _, err := stmts.exec(ctx, sqlInsertEvents[len(chunk)], args...); err != nil {
			return interpretError(err)
		}
	}
	return nil
}

// insertTask inserts a task and returns its ID. A task without a lease
// owner is stored unleased whatever its LeaseUntil.
func insertTask(ctx context.Context, stmts *txStmts, id string, t *ordostore.Task) (int64, error) {
	instanceID := t.InstanceID
	if instanceID == "" {
		instanceID = id
	}
	var leaseUntil int64
	if t.LeaseOwner != "" {
		leaseUntil = toNanos(t.LeaseUntil)
	}
	stmt, err := stmts.get(ctx, sqlInsertTask)
	if err != nil {
		return 0, err
	}
	res, err := stmt.ExecContext(ctx, instanceID, string(t.Kind), t.Queue, t.StepID, t.Attempt, t.Payload,
		toNanos(t.DueAt), t.LeaseOwner, leaseUntil, t.Claim, toNanos(t.CreatedAt))
	if err != nil {
		return 0, interpretError(err)
	}
	return res.LastInsertId()
}
