package ordopostgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// Statements of Apply. Every list is an array parameter, so one statement
// text serves any batch size and each is prepared once per connection.
const (
	// The batch's preconditions, read at the start of its transaction. The
	// rows are locked in ID order, so that two nodes whose batches touch the
	// same instances lock them in the same order and cannot deadlock. FOR NO
	// KEY UPDATE is the lock the UPDATE takes anyway; unlike FOR UPDATE it
	// lets other transactions insert events or tasks that reference the
	// instance (their foreign key check takes FOR KEY SHARE).
	sqlLockSeqs   = `SELECT id, seq FROM instances WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE`
	sqlLockClaims = `SELECT id, claim FROM tasks WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`
	// The messages the batch consumes, and whether each is still waiting.
	sqlLockMessages    = `SELECT id, consumed_by FROM messages WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`
	sqlConsumeMessages = `UPDATE messages AS m SET consumed_by = u.by
	FROM unnest($1::bigint[], $2::text[]) AS u(id, by) WHERE m.id = u.id`

	// The rows are inserted in batch order, each checked against the
	// earlier ones: ON CONFLICT DO NOTHING covers both unique constraints,
	// the ID and (workflow, idempotency_key), and skips a row that conflicts
	// with a committed row, with a row of a transaction it waited for, or
	// with an earlier row of the same statement.
	sqlInsertInstances = `INSERT INTO instances
	(id, workflow, version, status, idempotency_key, business_key, parent_id, seq, state, created_at, updated_at, finished_at)
	SELECT id, workflow, version, status, NULLIF(idempotency_key, ''), NULLIF(business_key, ''), NULLIF(parent_id, ''),
		seq, state, created_at, updated_at, NULLIF(finished_at, 0)
	FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::text[],
		$8::bigint[], $9::bytea[], $10::bigint[], $11::bigint[], $12::bigint[]) WITH ORDINALITY
		AS u(id, workflow, version, status, idempotency_key, business_key, parent_id,
		seq, state, created_at, updated_at, finished_at, ord)
	ORDER BY ord
	ON CONFLICT DO NOTHING
	RETURNING id, workflow, coalesce(idempotency_key, '')`
	sqlInstanceIDsByKey = `SELECT workflow, idempotency_key, id FROM instances
	WHERE (workflow, idempotency_key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`

	sqlDeleteTasks = `DELETE FROM tasks WHERE id = ANY($1::bigint[])`
	sqlCancelTasks = `DELETE FROM tasks t
	USING unnest($1::text[], $2::text[], $3::text[], $4::integer[]) AS c(instance_id, queue, step_id, attempt)
	WHERE t.instance_id = c.instance_id AND t.queue = c.queue AND t.step_id = c.step_id AND t.attempt = c.attempt`
	// prev_seq repeats the check made under the row's lock: a row that
	// does not match is a bug, and fails the batch.
	//
	// The check is made by the server, so that the COMMIT sent in the same
	// round trip does not run after it fails: a count other than the
	// expected one ($9, $4) divides by zero, which aborts the transaction
	// (errRowsChanged).
	sqlUpdateInstances = `WITH changed AS (UPDATE instances AS i
	SET status = u.status, business_key = NULLIF(u.business_key, ''), seq = u.seq, state = u.state,
		updated_at = u.updated_at, finished_at = NULLIF(u.finished_at, 0)
	FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bytea[], $7::bigint[], $8::bigint[])
		AS u(id, prev_seq, status, business_key, seq, state, updated_at, finished_at)
	WHERE i.id = u.id AND i.seq = u.prev_seq
	RETURNING 1)
	SELECT 1 / (count(*) = $9)::int FROM changed`
	sqlUpdateSeqs = `WITH changed AS (UPDATE instances AS i SET seq = u.seq
	FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(id, prev_seq, seq)
	WHERE i.id = u.id AND i.seq = u.prev_seq
	RETURNING 1)
	SELECT 1 / (count(*) = $4)::int FROM changed`
	sqlInsertEvents = `INSERT INTO events (instance_id, seq, type, step_id, attempt, data, created_at)
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::bytea[], $7::bigint[])`
	// Identity values are drawn in insertion order, which ORDER BY ord
	// makes the batch order: the returned IDs, sorted, are the tasks' IDs in
	// batch order, whatever order RETURNING gives them in.
	sqlInsertTasks = `INSERT INTO tasks
	(instance_id, kind, queue, step_id, attempt, payload, due_at, lease_owner, lease_until, claim, created_at)
	SELECT instance_id, kind, queue, step_id, attempt, payload, due_at, lease_owner, lease_until, claim, created_at
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::bytea[], $7::bigint[],
		$8::text[], $9::bigint[], $10::int[], $11::bigint[]) WITH ORDINALITY
		AS u(instance_id, kind, queue, step_id, attempt, payload, due_at, lease_owner, lease_until, claim, created_at, ord)
	ORDER BY ord
	RETURNING id`
)

// sqlNoSeqScan keeps the batch's statements on their indexes. Every one of
// them looks rows up by key (instances and tasks by ID), but a table that
// autovacuum has not analyzed yet (a new schema, or the churning tasks
// table between two analyses) can be planned with a sequential scan that
// reads every row, under the lock the statement takes, for a batch of a
// few rows. SET LOCAL ends with the transaction.
const sqlNoSeqScan = `SET LOCAL enable_seqscan = off`

// Retries of a batch whose transaction PostgreSQL aborted to break a
// deadlock (or a serialization failure).
const (
	maxApplyAttempts = 5
	applyRetryDelay  = 5 * time.Millisecond // doubled at each attempt, with jitter
)

// Apply writes a batch of transitions in one transaction and commits once;
// see [ordostore.Store.Apply].
//
// It works on the batch as a whole, in three round trips: the first begins
// the transaction, locks and reads the seqs of the instances and the claims
// of the tasks the batch refers to, and inserts the new instances; Apply
// then decides in memory, in batch order, which transitions hold (the
// completed task still exists with the same claim — else ErrDuplicate —,
// then the instance is at ExpectedSeq — else ErrConflict, or ErrNotFound —,
// and a new instance's ID and idempotency key are free — else
// ErrAlreadyExists); the second writes only those that hold, with one
// statement per table (a DELETE of the completed tasks, an UPDATE of the
// instances, INSERTs of the events and of the tasks); the third commits. A
// batch that meets a taken idempotency key reads the instance that holds it
// in one more, and a create whose outcome depends on the transitions before
// it (it completes a task, or an earlier transition advances its instance)
// is inserted after them, in one more. The rows read are locked until the
// commit, so what Apply decided on cannot change underneath it, and other
// nodes' batches on the same instances wait for it. A malformed transition
// (events that do not run on from the instance's seq, a new seq that is not
// the last event's) fails alone with an error wrapping ordotype.ErrInvalid.
// An event or task with an empty InstanceID belongs to the transition's
// instance.
//
// A transaction that PostgreSQL aborts to break a deadlock (two nodes
// creating instances with the same idempotency keys in different orders)
// is run again, up to 5 times. Apply returns an error, and writes nothing,
// if ctx ends before the commit or the database fails. The commit itself
// runs even if ctx ends meanwhile, and is durable when Apply returns; if
// the connection is lost during the commit, Apply returns an error and the
// batch may or may not have been written.
func (s *Store) Apply(ctx context.Context, batch []*ordostore.Transition) ([]ordostore.TransitionResult, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	if len(batch) == 0 {
		return []ordostore.TransitionResult{}, nil
	}
	delay := applyRetryDelay
	for attempt := 1; ; attempt++ {
		results, err := s.applyOnce(ctx, batch)
		if err == nil {
			return results, nil
		}
		if !isRetryable(err) || attempt == maxApplyAttempts {
			return nil, fmt.Errorf("apply batch: %w", err)
		}
		s.logger.InfoContext(ctx, "retrying a batch",
			slog.String("schema", s.schema), slog.Int("attempt", attempt), slog.Any("error", err))
		select {
		case <-time.After(delay/2 + rand.N(delay)):
		case <-ctx.Done():
			return nil, fmt.Errorf("apply batch: %w", ctx.Err())
		}
		delay *= 2
	}
}

// batchConn is what an applier runs its statements on: a connection that
// holds the batch's transaction.
type batchConn interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// errRowsChanged is a bug: an instance's seq changed under the lock taken
// on its row.
var errRowsChanged = errors.New("update instances: the rows changed after their seqs were checked under lock")

// applyOnce runs the batch's transaction once, in two round trips on one
// connection (BEGIN and COMMIT are statements of the pipelines, not
// round trips of their own).
func (s *Store) applyOnce(ctx context.Context, batch []*ordostore.Transition) ([]ordostore.TransitionResult, error) {
	a := newApplier(batch)
	a.channel = s.channel

	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	committed := false
	defer func() {
		if !committed {
			s.rollbackConn(ctx, conn)
		}
	}()

	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(sqlNoSeqScan)
	if len(a.advancing) > 0 {
		b.Queue(sqlLockSeqs, a.advancing).Query(a.scanSeqs)
	}
	if len(a.completing) > 0 {
		b.Queue(sqlLockClaims, a.completing).Query(a.scanClaims)
	}
	if len(a.consuming) > 0 {
		b.Queue(sqlLockMessages, a.consuming).Query(a.scanConsumers)
	}
	if len(a.pending) > 0 {
		a.queueCreates(b)
	}
	tx := conn
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	if err := a.lookUpExisting(ctx, tx); err != nil {
		return nil, err
	}
	if err := a.decide(ctx, tx); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The writes and the commit run even if ctx ends meanwhile.
	if err := a.write(context.WithoutCancel(ctx), tx); err != nil {
		return nil, err
	}
	committed = true
	return a.results, nil
}

// applier decides which transitions of one batch hold and writes them, in
// one transaction.
type applier struct {
	channel string // the wake-up channel (notify.go)
	batch   []*ordostore.Transition
	results []ordostore.TransitionResult
	ids     []string // the instance of each transition; "" if malformed
	ok      []bool   // whether each transition holds

	advancing  []string // the instances the batch advances, sorted
	completing []int64  // the tasks the batch completes, sorted
	consuming  []int64  // the messages the batch consumes, sorted

	// consumers holds, for each message the batch consumes that exists,
	// who consumed it ("" while it waits), as the batch leaves it so far.
	consumers map[int64]string

	seqs   map[string]int64 // the seq of each instance, as the batch leaves it so far
	claims map[int64]int    // the claim of each task not yet completed by the batch

	// pending are the creates decided but not inserted yet (in batch
	// order), with their instances and the tasks they complete.
	pending      []int
	pendingIDs   map[string]bool
	pendingTasks map[int64]bool
	// taken are the creates whose idempotency key was taken, whose
	// ExistingID is still to be read.
	taken []int
}

// newApplier validates the batch's transitions and gathers what its first
// round trip reads. The creates up to the first one whose outcome depends
// on the decisions (one that completes a task, or one whose instance an
// earlier transition advances) are pending already: they are inserted in
// that round trip.
func newApplier(batch []*ordostore.Transition) *applier {
	a := &applier{
		batch:        batch,
		results:      make([]ordostore.TransitionResult, len(batch)),
		ids:          make([]string, len(batch)),
		ok:           make([]bool, len(batch)),
		seqs:         make(map[string]int64),
		claims:       make(map[int64]int),
		pendingIDs:   make(map[string]bool),
		pendingTasks: make(map[int64]bool),
		consumers:    make(map[int64]string),
	}
	eager := true
	advanced := make(map[string]bool)
	for i, tr := range batch {
		id, err := tr.Check()
		if err != nil {
			a.results[i].Err = err
			continue
		}
		a.ids[i] = id
		if tr.Complete != nil {
			a.completing = append(a.completing, tr.Complete.ID)
		}
		if tr.Consume != nil {
			a.consuming = append(a.consuming, tr.Consume.ID)
		}
		if tr.Create == nil {
			a.advancing = append(a.advancing, id)
			advanced[id] = true
			continue
		}
		eager = eager && tr.Complete == nil && !advanced[id]
		if eager {
			a.pending = append(a.pending, i)
		}
	}
	slices.Sort(a.advancing)
	a.advancing = slices.Compact(a.advancing)
	slices.Sort(a.completing)
	a.completing = slices.Compact(a.completing)
	slices.Sort(a.consuming)
	a.consuming = slices.Compact(a.consuming)
	return a
}

// scanConsumers reads the result of sqlLockMessages.
func (a *applier) scanConsumers(rows pgx.Rows) error {
	for rows.Next() {
		var id int64
		var by string
		if err := rows.Scan(&id, &by); err != nil {
			return err
		}
		a.consumers[id] = by
	}
	return rows.Err()
}

// scanSeqs reads the result of sqlLockSeqs.
func (a *applier) scanSeqs(rows pgx.Rows) error {
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return err
		}
		a.seqs[id] = seq
	}
	return rows.Err()
}

// scanClaims reads the result of sqlLockClaims.
func (a *applier) scanClaims(rows pgx.Rows) error {
	for rows.Next() {
		var id int64
		var claim int
		if err := rows.Scan(&id, &claim); err != nil {
			return err
		}
		a.claims[id] = claim
	}
	return rows.Err()
}

// decide decides, in batch order, which transitions hold. A create is
// decided by its insert: it is left pending and inserted with the other
// pending creates, before any transition that depends on its outcome and at
// the end.
func (a *applier) decide(ctx context.Context, tx batchConn) error {
	for i, tr := range a.batch {
		if a.results[i].Err != nil || a.ok[i] {
			continue // malformed, or a create inserted by the first round trip
		}
		if (tr.Create == nil && a.pendingIDs[tr.InstanceID]) || (tr.Complete != nil && a.pendingTasks[tr.Complete.ID]) {
			if err := a.flush(ctx, tx); err != nil {
				return err
			}
		}
		id := a.ids[i]
		if c := tr.Complete; c != nil {
			if claim, found := a.claims[c.ID]; !found || claim != c.Claim {
				a.results[i].Err = fmt.Errorf("complete task %d with claim %d: %w", c.ID, c.Claim, ordotype.ErrDuplicate)
				continue
			}
		}
		if tr.Create != nil {
			a.pending = append(a.pending, i)
			a.pendingIDs[id] = true
			if c := tr.Complete; c != nil {
				a.pendingTasks[c.ID] = true
				delete(a.claims, c.ID)
			}
			continue
		}
		if c := tr.Consume; c != nil {
			if by, found := a.consumers[c.ID]; !found || by != "" {
				a.results[i].Err = fmt.Errorf("consume message %d: %w", c.ID, ordotype.ErrDuplicate)
				continue
			}
		}
		seq, found := a.seqs[id]
		switch {
		case !found:
			a.results[i].Err = fmt.Errorf("instance %s: %w", id, ordotype.ErrNotFound)
			continue
		case seq != tr.ExpectedSeq:
			a.results[i].Err = fmt.Errorf("instance %s is at seq %d, expected %d: %w", id, seq, tr.ExpectedSeq, ordotype.ErrConflict)
			continue
		}
		a.seqs[id] = tr.ExpectedSeq + int64(len(tr.Events))
		if c := tr.Complete; c != nil {
			delete(a.claims, c.ID)
		}
		if c := tr.Consume; c != nil {
			a.consumers[c.ID] = c.By
		}
		a.ok[i] = true
	}
	return a.flush(ctx, tx)
}

// flush inserts the pending creates.
func (a *applier) flush(ctx context.Context, tx batchConn) error {
	if len(a.pending) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	a.queueCreates(b)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	return a.lookUpExisting(ctx, tx)
}

// queueCreates queues the insert of the pending creates on b, and empties
// the pending list.
func (a *applier) queueCreates(b *pgx.Batch) {
	pending := a.pending
	a.pending = nil
	clear(a.pendingIDs)
	clear(a.pendingTasks)

	n := len(pending)
	var (
		ids, workflows, statuses, idemKeys, bizKeys, parents = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		versions                                             = make([]int, n)
		seqs, createdAts, updatedAts, finishedAts            = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		states                                               = make([][]byte, n)
	)
	for k, i := range pending {
		c := a.batch[i].Create
		ids[k], workflows[k], versions[k], statuses[k] = c.ID, c.Workflow, c.Version, string(c.Status)
		idemKeys[k], bizKeys[k], parents[k] = c.IdempotencyKey, c.BusinessKey, c.ParentID
		seqs[k], states[k] = c.Seq, c.State
		createdAts[k], updatedAts[k], finishedAts[k] = toNanos(c.CreatedAt), toNanos(c.UpdatedAt), toNanos(c.FinishedAt)
	}
	b.Queue(sqlInsertInstances, ids, workflows, versions, statuses, idemKeys, bizKeys, parents,
		seqs, states, createdAts, updatedAts, finishedAts).Query(func(rows pgx.Rows) error {
		return a.created(pending, rows)
	})
}

// created reads the result of sqlInsertInstances for the creates pending:
// the rows it inserted.
func (a *applier) created(pending []int, rows pgx.Rows) error {
	// A row is known by its ID, workflow and key. Two creates with all
	// three equal conflict with each other, so at most the first of them
	// is inserted.
	type rowKey struct{ id, workflow, key string }
	inserted := make(map[rowKey]int)
	for rows.Next() {
		var k rowKey
		if err := rows.Scan(&k.id, &k.workflow, &k.key); err != nil {
			return err
		}
		inserted[k]++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, i := range pending {
		tr := a.batch[i]
		c := tr.Create
		k := rowKey{c.ID, c.Workflow, c.IdempotencyKey}
		if inserted[k] > 0 {
			inserted[k]--
			a.seqs[c.ID] = c.Seq
			a.ok[i] = true
			continue
		}
		a.results[i].Err = fmt.Errorf("instance %s: %w", c.ID, ordotype.ErrAlreadyExists)
		a.results[i].ExistingID = c.ID
		if c.IdempotencyKey != "" {
			a.taken = append(a.taken, i)
		}
		if tr.Complete != nil {
			a.claims[tr.Complete.ID] = tr.Complete.Claim // not completed after all
		}
	}
	return nil
}

// lookUpExisting reads the instance that holds the idempotency key of each
// create that could not be inserted. A create that conflicted only on its
// ID keeps its own ID as ExistingID.
func (a *applier) lookUpExisting(ctx context.Context, tx batchConn) error {
	if len(a.taken) == 0 {
		return nil
	}
	taken := a.taken
	a.taken = nil
	workflows, keys := make([]string, len(taken)), make([]string, len(taken))
	for k, i := range taken {
		workflows[k], keys[k] = a.batch[i].Create.Workflow, a.batch[i].Create.IdempotencyKey
	}
	type key struct{ workflow, key string }
	existing := make(map[key]string)
	rows, err := tx.Query(ctx, sqlInstanceIDsByKey, workflows, keys)
	if err != nil {
		return fmt.Errorf("read existing idempotency keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k key
		var id string
		if err := rows.Scan(&k.workflow, &k.key, &id); err != nil {
			return err
		}
		existing[k] = id
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read existing idempotency keys: %w", err)
	}
	for _, i := range taken {
		c := a.batch[i].Create
		if id, ok := existing[key{c.Workflow, c.IdempotencyKey}]; ok {
			a.results[i].ExistingID = id
			a.results[i].Err = fmt.Errorf("instance of %s with idempotency key %q: %w", c.Workflow, c.IdempotencyKey, ordotype.ErrAlreadyExists)
		}
	}
	return nil
}

// instanceWrite is the new read model of one instance advanced by the
// batch, after all of the batch's transitions on it.
type instanceWrite struct {
	prevSeq int64 // its seq before the batch's first transition on it
	seq     int64
	update  *ordostore.InstanceUpdate // the batch's last Update of it, if any
}

// write writes the transitions that hold, in one round trip.
func (a *applier) write(ctx context.Context, tx batchConn) error {
	var (
		done       []int64
		writes     = make(map[string]*instanceWrite)
		order      []string // the keys of writes, in batch order
		events     eventRows
		tasks      taskRows
		taskOwners []int // the transition of each task
		consumed   []int64
		consumedBy []string
		// Cancel's matches: instance ids, queues, steps, attempts.
		cancelIDs, cancelQueues, cancelSteps []string
		cancelAttempts                       []int32
	)
	for i, tr := range a.batch {
		if !a.ok[i] {
			continue
		}
		id := a.ids[i]
		if c := tr.Complete; c != nil {
			done = append(done, c.ID)
		}
		if c := tr.Consume; c != nil {
			consumed = append(consumed, c.ID)
			consumedBy = append(consumedBy, c.By)
		}
		for _, m := range tr.Cancel {
			cancelIDs = append(cancelIDs, id)
			cancelQueues = append(cancelQueues, m.Queue)
			cancelSteps = append(cancelSteps, m.StepID)
			cancelAttempts = append(cancelAttempts, int32(m.Attempt))
		}
		if tr.Create == nil && (tr.Update != nil || len(tr.Events) > 0) {
			w := writes[id]
			if w == nil {
				w = &instanceWrite{prevSeq: tr.ExpectedSeq}
				writes[id] = w
				order = append(order, id)
			}
			w.seq = tr.ExpectedSeq + int64(len(tr.Events))
			if tr.Update != nil {
				w.update = tr.Update
			}
		}
		for _, ev := range tr.Events {
			events.add(id, ev)
		}
		for _, t := range tr.Tasks {
			tasks.add(id, t)
			taskOwners = append(taskOwners, i)
		}
	}

	b := &pgx.Batch{}
	if len(done) > 0 {
		b.Queue(sqlDeleteTasks, done)
	}
	if len(cancelIDs) > 0 {
		b.Queue(sqlCancelTasks, cancelIDs, cancelQueues, cancelSteps, cancelAttempts)
	}
	if len(consumed) > 0 {
		b.Queue(sqlConsumeMessages, consumed, consumedBy)
	}
	var full fullUpdateRows
	var seqOnly seqUpdateRows
	for _, id := range order {
		if w := writes[id]; w.update != nil {
			full.add(id, w)
		} else {
			seqOnly.add(id, w)
		}
	}
	if n := len(full.ids); n > 0 {
		b.Queue(sqlUpdateInstances, append(full.args(), n)...)
	}
	if n := len(seqOnly.ids); n > 0 {
		b.Queue(sqlUpdateSeqs, append(seqOnly.args(), n)...)
	}
	if len(events.instanceIDs) > 0 {
		b.Queue(sqlInsertEvents, events.args()...)
	}
	var taskIDs []int64
	if slices.Contains(tasks.leaseOwners, "") {
		// Work for another node, or for later: wake the listeners at commit.
		b.Queue(sqlNotify, a.channel)
	}
	if len(tasks.instanceIDs) > 0 {
		b.Queue(sqlInsertTasks, tasks.args()...).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return err
				}
				taskIDs = append(taskIDs, id)
			}
			return rows.Err()
		})
	}
	// The commit goes in the same round trip. If a statement fails, the
	// server skips the rest of the pipeline, COMMIT included, and the
	// transaction is rolled back.
	b.Queue("COMMIT").Exec(func(tag pgconn.CommandTag) error {
		if tag.String() != "COMMIT" {
			return fmt.Errorf("commit: the server answered %s", tag)
		}
		return nil
	})
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == codeDivisionByZero {
			return errRowsChanged
		}
		return fmt.Errorf("write batch: %w", interpretError(err))
	}
	if len(taskIDs) != len(taskOwners) {
		return fmt.Errorf("insert tasks: got %d IDs for %d tasks", len(taskIDs), len(taskOwners))
	}
	slices.Sort(taskIDs)
	for k, i := range taskOwners {
		a.results[i].TaskIDs = append(a.results[i].TaskIDs, taskIDs[k])
	}
	return nil
}

// eventRows are the columns of the events to insert, one array per
// column: the parameters of sqlInsertEvents.
type eventRows struct {
	instanceIDs, types, stepIDs []string
	seqs, createdAts            []int64
	attempts                    []int
	data                        [][]byte
}

func (c *eventRows) add(instanceID string, ev *ordostore.Event) {
	c.instanceIDs = append(c.instanceIDs, instanceID)
	c.seqs = append(c.seqs, ev.Seq)
	c.types = append(c.types, ev.Type)
	c.stepIDs = append(c.stepIDs, ev.StepID)
	c.attempts = append(c.attempts, ev.Attempt)
	c.data = append(c.data, ev.Data)
	c.createdAts = append(c.createdAts, toNanos(ev.CreatedAt))
}

func (c *eventRows) args() []any {
	return []any{c.instanceIDs, c.seqs, c.types, c.stepIDs, c.attempts, c.data, c.createdAts}
}

// taskRows are the columns of the tasks to insert: the parameters of
// sqlInsertTasks.
type taskRows struct {
	instanceIDs, kinds, queues, stepIDs, leaseOwners []string
	dueAts, leaseUntils, createdAts                  []int64
	attempts, claims                                 []int
	payloads                                         [][]byte
}

// add adds a task of the transition's instance instanceID. A task without
// a lease owner is stored unleased, whatever its LeaseUntil.
func (c *taskRows) add(instanceID string, t *ordostore.Task) {
	if t.InstanceID != "" {
		instanceID = t.InstanceID
	}
	var leaseUntil int64
	if t.LeaseOwner != "" {
		leaseUntil = toNanos(t.LeaseUntil)
	}
	c.instanceIDs = append(c.instanceIDs, instanceID)
	c.kinds = append(c.kinds, string(t.Kind))
	c.queues = append(c.queues, t.Queue)
	c.stepIDs = append(c.stepIDs, t.StepID)
	c.attempts = append(c.attempts, t.Attempt)
	c.payloads = append(c.payloads, t.Payload)
	c.dueAts = append(c.dueAts, toNanos(t.DueAt))
	c.leaseOwners = append(c.leaseOwners, t.LeaseOwner)
	c.leaseUntils = append(c.leaseUntils, leaseUntil)
	c.claims = append(c.claims, t.Claim)
	c.createdAts = append(c.createdAts, toNanos(t.CreatedAt))
}

func (c *taskRows) args() []any {
	return []any{c.instanceIDs, c.kinds, c.queues, c.stepIDs, c.attempts, c.payloads, c.dueAts,
		c.leaseOwners, c.leaseUntils, c.claims, c.createdAts}
}

// fullUpdateRows are the parameters of sqlUpdateInstances.
type fullUpdateRows struct {
	ids, statuses, bizKeys                  []string
	prevSeqs, seqs, updatedAts, finishedAts []int64
	states                                  [][]byte
}

func (c *fullUpdateRows) add(id string, w *instanceWrite) {
	u := w.update
	c.ids = append(c.ids, id)
	c.prevSeqs = append(c.prevSeqs, w.prevSeq)
	c.statuses = append(c.statuses, string(u.Status))
	c.bizKeys = append(c.bizKeys, u.BusinessKey)
	c.seqs = append(c.seqs, w.seq)
	c.states = append(c.states, u.State)
	c.updatedAts = append(c.updatedAts, toNanos(u.UpdatedAt))
	c.finishedAts = append(c.finishedAts, toNanos(u.FinishedAt))
}

func (c *fullUpdateRows) args() []any {
	return []any{c.ids, c.prevSeqs, c.statuses, c.bizKeys, c.seqs, c.states, c.updatedAts, c.finishedAts}
}

// seqUpdateRows are the parameters of sqlUpdateSeqs.
type seqUpdateRows struct {
	ids            []string
	prevSeqs, seqs []int64
}

func (c *seqUpdateRows) add(id string, w *instanceWrite) {
	c.ids = append(c.ids, id)
	c.prevSeqs = append(c.prevSeqs, w.prevSeq)
	c.seqs = append(c.seqs, w.seq)
}

func (c *seqUpdateRows) args() []any { return []any{c.ids, c.prevSeqs, c.seqs} }

// rollbackConn ends the transaction left open on conn by a batch that
// failed. A connection it cannot roll back is closed, and the pool drops
// it when it is released.
func (s *Store) rollbackConn(ctx context.Context, conn *pgxpool.Conn) {
	pc := conn.Conn().PgConn()
	if pc.IsClosed() || pc.TxStatus() == 'I' {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(rctx, "ROLLBACK"); err != nil {
		if ctx.Err() == nil {
			s.logger.WarnContext(ctx, "failed to roll back", slog.String("schema", s.schema), slog.Any("error", err))
		}
		_ = conn.Conn().Close(rctx)
	}
}
