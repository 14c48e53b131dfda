package ordosqlite

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// Statements of Apply.
const (
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

	sqlInstanceSeq = `SELECT seq FROM instances WHERE id = ?`

	// The claims of the tasks a batch completes, read once per batch. The
	// lists are JSON arrays: one statement serves any batch size.
	sqlBatchClaims = `SELECT id, claim FROM tasks WHERE id IN (SELECT value FROM json_each(?))`
	sqlDeleteTasks = `DELETE FROM tasks WHERE id IN (SELECT value FROM json_each(?))`
	sqlCancelTasks = `DELETE FROM tasks WHERE instance_id = ? AND queue = ? AND step_id = ? AND attempt = ?`
)

// chunkSizes are the row counts of the prepared multi-row INSERTs; a batch's
// rows are written in the fewest chunks of these sizes.
var chunkSizes = []int{64, 16, 4, 1}

const (
	eventCols = "instance_id, first_seq, last_seq, events"
	taskCols  = "instance_id, kind, queue, step_id, attempt, payload, due_at, lease_owner, lease_until, claim, created_at"
)

// sqlInsertEvents and sqlInsertTasks hold the multi-row INSERT for each of
// chunkSizes.
var (
	sqlInsertEvents = multiRowInserts("events", eventCols, 4)
	sqlInsertTasks  = multiRowInserts("tasks", taskCols, 11)
)

func multiRowInserts(table, cols string, n int) map[int]string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", n), ", ") + ")"
	out := make(map[int]string, len(chunkSizes))
	for _, size := range chunkSizes {
		out[size] = "INSERT INTO " + table + " (" + cols + ") VALUES " + strings.TrimSuffix(strings.Repeat(row+", ", size), ", ")
	}
	return out
}

// applyQueries are the statements Apply runs, prepared at Open.
func applyQueries() []string {
	qs := []string{sqlInsertInstance, sqlInstanceIDByKey, sqlUpdateInstance, sqlUpdateInstanceSeq, sqlInstanceSeq, sqlBatchClaims, sqlDeleteTasks, sqlCancelTasks}
	for _, size := range chunkSizes {
		qs = append(qs, sqlInsertEvents[size], sqlInsertTasks[size])
	}
	return qs
}

// Apply writes a batch of transitions in one transaction and commits once;
// see [ordostore.Store.Apply].
//
// It works on the batch as a whole rather than transition by transition:
// one query reads the claims of the tasks the batch completes; then, in
// batch order, a transition holds if its task still exists with the same
// claim (checked in memory; else ErrDuplicate) and its instance's own write
// succeeds: the insert of a new instance (else ErrAlreadyExists, with the
// ID of the instance that has the idempotency key) or the update guarded by
// ExpectedSeq (else ErrConflict, or ErrNotFound). That write is the
// transition's first, so a failed check leaves nothing to undo and no
// savepoint is needed. Then one DELETE removes the completed tasks and
// multi-row INSERTs append the events (one packed row per transition) and
// the tasks of the transitions that hold. The writer holds the database's write lock from
// the first read to the commit. A malformed transition (events that do not
// run on from the instance's seq, a new seq that is not the last event's)
// fails alone with an error wrapping ordotype.ErrInvalid. An event or task
// with an empty InstanceID belongs to the transition's instance.
//
// Apply returns an error, and writes nothing, if ctx ends or the database
// fails; the commit is durable when it returns.
func (s *Store) Apply(ctx context.Context, batch []*ordostore.Transition) ([]ordostore.TransitionResult, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	results := make([]ordostore.TransitionResult, len(batch))
	if len(batch) == 0 {
		return results, nil
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin batch: %w", err)
	}
	stmts := newTxStmts(tx, s.wstmts)
	if err := applyBatch(ctx, stmts, batch, results); err != nil {
		s.rollback(ctx, tx)
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit batch: %w", err)
	}
	return results, nil
}

func applyBatch(ctx context.Context, stmts *txStmts, batch []*ordostore.Transition, results []ordostore.TransitionResult) error {
	ids := make([]string, len(batch))
	var completing []int64
	for i, tr := range batch {
		id, err := tr.Check()
		if err != nil {
			results[i].Err = err
			continue
		}
		ids[i] = id
		if tr.Complete != nil {
			completing = append(completing, tr.Complete.ID)
		}
	}
	claims, err := readClaims(ctx, stmts, completing)
	if err != nil {
		return err
	}

	// Decide, in batch order, which transitions hold. The completed task is
	// checked in memory; then the instance's own write is its check: the
	// insert of a new instance, or the update guarded by its seq. Either is
	// the transition's first write, so a failed check leaves nothing to undo.
	ok := make([]bool, len(batch))
	var done []int64
	for i, tr := range batch {
		if results[i].Err != nil {
			continue
		}
		if c := tr.Complete; c != nil {
			if claim, found := claims[c.ID]; !found || claim != c.Claim {
				results[i].Err = fmt.Errorf("complete task %d with claim %d: %w", c.ID, c.Claim, ordotype.ErrDuplicate)
				continue
			}
		}
		if c := tr.Consume; c != nil {
			if err := consumable(ctx, stmts, c); err != nil {
				if !isPrecondition(err) {
					return err
				}
				results[i].Err = err
				continue
			}
		}
		var err error
		if tr.Create != nil {
			err = createInstance(ctx, stmts, tr.Create, &results[i])
		} else {
			err = advance(ctx, stmts, tr)
		}
		if err != nil {
			if !isPrecondition(err) {
				return err
			}
			results[i].Err = err
			continue
		}
		if c := tr.Consume; c != nil {
			// Checked above, under the same write lock: this cannot fail
			// for want of the message.
			if err := consume(ctx, stmts, c); err != nil {
				return err
			}
		}
		if c := tr.Complete; c != nil {
			delete(claims, c.ID)
			done = append(done, c.ID)
		}
		ok[i] = true
	}

	if len(done) > 0 {
		if _, err := stmts.exec(ctx, sqlDeleteTasks, jsonInts(done)); err != nil {
			return fmt.Errorf("delete completed tasks: %w", err)
		}
	}
	for i, tr := range batch {
		if !ok[i] {
			continue
		}
		for _, m := range tr.Cancel {
			if _, err := stmts.exec(ctx, sqlCancelTasks, ids[i], m.Queue, m.StepID, m.Attempt); err != nil {
				return fmt.Errorf("cancel tasks: %w", err)
			}
		}
	}
	var events []any
	var tasks []any
	nEvents, nTasks := 0, 0
	for i, tr := range batch {
		if !ok[i] {
			continue
		}
		if n := len(tr.Events); n > 0 {
			events = append(events, ids[i], tr.Events[0].Seq, tr.Events[n-1].Seq, packEvents(nil, tr.Events))
			nEvents++
		}
		for _, t := range tr.Tasks {
			instanceID := t.InstanceID
			if instanceID == "" {
				instanceID = ids[i]
			}
			var leaseUntil int64
			if t.LeaseOwner != "" {
				leaseUntil = toNanos(t.LeaseUntil)
			}
			tasks = append(tasks, instanceID, string(t.Kind), t.Queue, t.StepID, t.Attempt, t.Payload,
				toNanos(t.DueAt), t.LeaseOwner, leaseUntil, t.Claim, toNanos(t.CreatedAt))
			nTasks++
		}
	}
	if _, err := insertRows(ctx, stmts, sqlInsertEvents, events, nEvents, 4); err != nil {
		return fmt.Errorf("insert events: %w", interpretError(err))
	}
	taskIDs, err := insertRows(ctx, stmts, sqlInsertTasks, tasks, nTasks, 11)
	if err != nil {
		return fmt.Errorf("insert tasks: %w", interpretError(err))
	}
	k := 0
	for i, tr := range batch {
		if !ok[i] || len(tr.Tasks) == 0 {
			continue
		}
		results[i].TaskIDs = taskIDs[k : k+len(tr.Tasks) : k+len(tr.Tasks)]
		k += len(tr.Tasks)
	}
	return nil
}

// advance moves an existing instance from ExpectedSeq to its new seq and
// read model, or, for a transition that changes nothing on the instance,
// checks its seq. It returns ErrConflict when the instance is at another
// seq and ErrNotFound when there is no such instance; either way nothing
// was written.
func advance(ctx context.Context, stmts *txStmts, tr *ordostore.Transition) error {
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
		return fmt.Errorf("update instance %s: %w", tr.InstanceID, interpretError(err))
	}
	if n == 1 {
		return nil
	}
	// Nothing was updated: the check failed, or the transition changes
	// nothing on the instance and only its seq is checked. The writer holds
	// the write lock, so the seq read here holds until the commit.
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

// readClaims returns the claim of each existing task among ids.
func readClaims(ctx context.Context, stmts *txStmts, ids []int64) (map[int64]int, error) {
	claims := make(map[int64]int, len(ids))
	if len(ids) == 0 {
		return claims, nil
	}
	rows, err := stmts.query(ctx, sqlBatchClaims, jsonInts(ids))
	if err != nil {
		return nil, fmt.Errorf("read task claims: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var claim int
		if err := rows.Scan(&id, &claim); err != nil {
			return nil, err
		}
		claims[id] = claim
	}
	return claims, rows.Err()
}

func jsonInts(ids []int64) string {
	b := make([]byte, 0, len(ids)*8+2)
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}

// insertRows inserts n rows of cols values each (flattened in args) with
// the fewest prepared multi-row INSERTs, and returns the rowid of each row
// in order. Rowids of one INSERT are consecutive: the writer is the only
// connection writing, and tasks use AUTOINCREMENT.
func insertRows(ctx context.Context, stmts *txStmts, queries map[int]string, args []any, n, cols int) ([]int64, error) {
	var ids []int64
	for n > 0 {
		size := chunkSizes[len(chunkSizes)-1]
		for _, c := range chunkSizes {
			if c <= n {
				size = c
				break
			}
		}
		stmt, err := stmts.get(ctx, queries[size])
		if err != nil {
			return nil, err
		}
		res, err := stmt.ExecContext(ctx, args[:size*cols]...)
		if err != nil {
			return nil, err
		}
		last, err := res.LastInsertId()
		if err != nil {
			return nil, err
		}
		for k := int64(size) - 1; k >= 0; k-- {
			ids = append(ids, last-k)
		}
		args = args[size*cols:]
		n -= size
	}
	return ids, nil
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
