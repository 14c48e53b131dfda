package ordosqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// Statements of the task queue. A task is claimable when due_at <= now and
// lease_until < now: an unleased task has lease_until 0.
const (
	taskColumns = `id, instance_id, kind, queue, step_id, attempt, payload, due_at, lease_owner, lease_until, claim, created_at`

	// One (kind, queue) pair, or one kind and any queue: an ordered range
	// scan of tasks_kind_queue_due or tasks_kind_due that stops at LIMIT.
	sqlClaimCandidatesQueue = `SELECT id, due_at FROM tasks
	WHERE kind = ? AND queue = ? AND due_at <= ? AND lease_until < ?
	ORDER BY due_at, id LIMIT ?`
	sqlClaimCandidatesKind = `SELECT id, due_at FROM tasks
	WHERE kind = ? AND due_at <= ? AND lease_until < ?
	ORDER BY due_at, id LIMIT ?`
	// Many pairs: one query that sorts every claimable task of those pairs.
	sqlClaimCandidatesMany = `SELECT id, due_at FROM tasks
	WHERE kind IN (SELECT value FROM json_each(?)) AND queue IN (SELECT value FROM json_each(?))
	AND due_at <= ? AND lease_until < ?
	ORDER BY due_at, id LIMIT ?`
	sqlClaimCandidatesManyKinds = `SELECT id, due_at FROM tasks
	WHERE kind IN (SELECT value FROM json_each(?)) AND due_at <= ? AND lease_until < ?
	ORDER BY due_at, id LIMIT ?`
	sqlClaim = `UPDATE tasks SET lease_owner = ?, lease_until = ?, claim = claim + 1
	WHERE id IN (SELECT value FROM json_each(?))
	RETURNING ` + taskColumns

	sqlNextDueQueue = `SELECT due_at FROM tasks
	WHERE kind = ? AND queue = ? AND lease_owner = '' ORDER BY due_at LIMIT 1`
	sqlNextDueKind = `SELECT due_at FROM tasks
	WHERE kind = ? AND lease_owner = '' ORDER BY due_at LIMIT 1`
	sqlNextDueMany = `SELECT MIN(due_at) FROM tasks
	WHERE kind IN (SELECT value FROM json_each(?)) AND queue IN (SELECT value FROM json_each(?)) AND lease_owner = ''`
	sqlNextDueManyKinds = `SELECT MIN(due_at) FROM tasks
	WHERE kind IN (SELECT value FROM json_each(?)) AND lease_owner = ''`

	sqlReleaseAllLeases   = `UPDATE tasks SET lease_owner = '', lease_until = 0 WHERE lease_owner <> ''`
	sqlReleaseOwnerLeases = `UPDATE tasks SET lease_owner = '', lease_until = 0 WHERE lease_owner = ?`
	sqlExtendLeases       = `UPDATE tasks SET lease_until = ? WHERE lease_owner = ? AND id IN (SELECT value FROM json_each(?))`
)

// maxPairs is the most (kind, queue) pairs, or kinds when any queue will
// do, that ClaimTasks and NextTaskDue look up one by one, each with an
// ordered index scan that stops at its LIMIT. Beyond it they run one query
// over all of them, which sorts its candidates (see docs/storage.md).
const maxPairs = 16

// taskFilter is a set of kinds and queues, without duplicates.
type taskFilter struct {
	kinds  []string
	queues []string // empty: any queue
}

func newTaskFilter(kinds []ordotype.TaskKind, queues []string) (*taskFilter, error) {
	if len(kinds) == 0 {
		return nil, fmt.Errorf("%w: no task kinds given", ordotype.ErrInvalid)
	}
	f := &taskFilter{}
	for _, k := range kinds {
		f.kinds = append(f.kinds, string(k))
	}
	slices.Sort(f.kinds)
	f.kinds = slices.Compact(f.kinds)
	f.queues = slices.Compact(slices.Sorted(slices.Values(queues)))
	return f, nil
}

// pairs returns how many lookups the filter takes one by one.
func (f *taskFilter) pairs() int {
	if len(f.queues) == 0 {
		return len(f.kinds)
	}
	return len(f.kinds) * len(f.queues)
}

// each calls fn with the query and arguments that look up one pair, with
// extra appended to the arguments.
func (f *taskFilter) each(queueQuery, kindQuery string, extra []any, fn func(query string, args []any) error) error {
	for _, kind := range f.kinds {
		if len(f.queues) == 0 {
			if err := fn(kindQuery, append([]any{kind}, extra...)); err != nil {
				return err
			}
			continue
		}
		for _, queue := range f.queues {
			if err := fn(queueQuery, append([]any{kind, queue}, extra...)); err != nil {
				return err
			}
		}
	}
	return nil
}

// all returns the query and arguments that look up every pair at once, with
// extra appended to the arguments.
func (f *taskFilter) all(queuesQuery, kindsQuery string, extra []any) (string, []any) {
	kinds, _ := json.Marshal(f.kinds) // cannot fail on []string
	if len(f.queues) == 0 {
		return kindsQuery, append([]any{string(kinds)}, extra...)
	}
	queues, _ := json.Marshal(f.queues)
	return queuesQuery, append([]any{string(kinds), string(queues)}, extra...)
}

// candidate is a claimable task found by ClaimTasks.
type candidate struct {
	id    int64
	dueAt int64
}

// ClaimTasks leases up to Limit due, unleased tasks to Owner, oldest due
// first; see [ordostore.Store.ClaimTasks]. Kinds and Owner are required and
// LeaseUntil must be after Now (ordotype.ErrInvalid); nil or empty Queues
// means any queue. The tasks are returned in (DueAt, ID) order.
func (s *Store) ClaimTasks(ctx context.Context, params *ordostore.ClaimTasksParams) ([]*ordostore.Task, error) {
	filter, err := newTaskFilter(params.Kinds, params.Queues)
	if err != nil {
		return nil, fmt.Errorf("claim tasks: %w", err)
	}
	if params.Owner == "" {
		return nil, fmt.Errorf("claim tasks: %w: no lease owner given", ordotype.ErrInvalid)
	}
	if !params.LeaseUntil.After(params.Now) {
		return nil, fmt.Errorf("claim tasks: %w: LeaseUntil %s is not after Now %s", ordotype.ErrInvalid, params.LeaseUntil, params.Now)
	}
	if params.Limit <= 0 {
		return []*ordostore.Task{}, nil
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	var tasks []*ordostore.Task
	err = s.inLeaseTx(ctx, func(stmts *txStmts) error {
		ids, err := claimCandidates(ctx, stmts, filter, params)
		if err != nil || len(ids) == 0 {
			return err
		}
		rows, err := stmts.query(ctx, sqlClaim, params.Owner, toNanos(params.LeaseUntil), ids)
		if err != nil {
			return err
		}
		tasks, err = collect(rows, scanTask)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("claim tasks: %w", err)
	}
	if tasks == nil {
		return []*ordostore.Task{}, nil
	}
	// RETURNING gives no order.
	slices.SortFunc(tasks, func(a, b *ordostore.Task) int {
		return cmp.Or(a.DueAt.Compare(b.DueAt), cmp.Compare(a.ID, b.ID))
	})
	return tasks, nil
}

// claimCandidates returns, as a JSON array, the IDs of the params.Limit
// claimable tasks due first.
func claimCandidates(ctx context.Context, stmts *txStmts, filter *taskFilter, params *ordostore.ClaimTasksParams) (string, error) {
	now := toNanos(params.Now)
	extra := []any{now, now, params.Limit}
	var cands []candidate
	lookup := func(query string, args []any) error {
		rows, err := stmts.query(ctx, query, args...)
		if err != nil {
			return err
		}
		found, err := collect(rows, func(scan func(dest ...any) error) (c candidate, err error) {
			return c, scan(&c.id, &c.dueAt)
		})
		cands = append(cands, found...)
		return err
	}
	var err error
	if filter.pairs() <= maxPairs {
		err = filter.each(sqlClaimCandidatesQueue, sqlClaimCandidatesKind, extra, lookup)
	} else {
		err = lookup(filter.all(sqlClaimCandidatesMany, sqlClaimCandidatesManyKinds, extra))
	}
	if err != nil || len(cands) == 0 {
		return "", err
	}
	// Each lookup is in order; merge them and keep the first Limit.
	slices.SortFunc(cands, func(a, b candidate) int { return cmp.Or(cmp.Compare(a.dueAt, b.dueAt), cmp.Compare(a.id, b.id)) })
	cands = cands[:min(len(cands), params.Limit)]
	ids := make([]byte, 0, 16*len(cands))
	ids = append(ids, '[')
	for i, c := range cands {
		if i > 0 {
			ids = append(ids, ',')
		}
		ids = strconv.AppendInt(ids, c.id, 10)
	}
	return string(append(ids, ']')), nil
}

// NextTaskDue returns the earliest DueAt of the unleased tasks matching the
// filter; see [ordostore.Store.NextTaskDue]. Kinds are required
// (ordotype.ErrInvalid); nil or empty Queues means any queue.
func (s *Store) NextTaskDue(ctx context.Context, params *ordostore.NextTaskDueParams) (time.Time, bool, error) {
	filter, err := newTaskFilter(params.Kinds, params.Queues)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next task due: %w", err)
	}
	if err := s.enter(); err != nil {
		return time.Time{}, false, err
	}
	defer s.leave()

	var next sql.NullInt64
	lookup := func(query string, args []any) error {
		var due sql.NullInt64
		if err := s.readRow(ctx, query, args, &due); err != nil && !isNoRows(err) {
			return err
		}
		if due.Valid && (!next.Valid || due.Int64 < next.Int64) {
			next = due
		}
		return nil
	}
	if filter.pairs() <= maxPairs {
		err = filter.each(sqlNextDueQueue, sqlNextDueKind, nil, lookup)
	} else {
		err = lookup(filter.all(sqlNextDueMany, sqlNextDueManyKinds, nil))
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next task due: %w", err)
	}
	if !next.Valid {
		return time.Time{}, false, nil
	}
	return fromNanos(next.Int64), true, nil
}

// ReleaseLeases clears the leases of every task (owner "") or of the tasks
// leased to owner, and returns how many it cleared.
func (s *Store) ReleaseLeases(ctx context.Context, owner string) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()

	query, args := sqlReleaseAllLeases, []any(nil)
	if owner != "" {
		query, args = sqlReleaseOwnerLeases, []any{owner}
	}
	stmt, err := s.wstmts.get(ctx, query)
	if err != nil {
		return 0, fmt.Errorf("release leases: %w", err)
	}
	res, err := stmt.ExecContext(ctx, args...)
	if err != nil {
		return 0, fmt.Errorf("release leases: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("release leases: %w", err)
	}
	return int(n), nil
}

// CountTasks returns how many tasks, leased or not, match the filter.
func (s *Store) CountTasks(ctx context.Context, params *ordostore.CountTasksParams) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()

	query, args := `SELECT COUNT(*) FROM tasks WHERE TRUE`, []any{}
	if params.InstanceID != "" {
		query, args = query+` AND instance_id = ?`, append(args, params.InstanceID)
	}
	if len(params.Kinds) > 0 {
		kinds, err := json.Marshal(params.Kinds)
		if err != nil {
			return 0, fmt.Errorf("count tasks: %w", err)
		}
		query, args = query+` AND kind IN (SELECT value FROM json_each(?))`, append(args, string(kinds))
	}
	var n int
	if err := s.readRow(ctx, query, args, &n); err != nil {
		return 0, fmt.Errorf("count tasks: %w", err)
	}
	return n, nil
}

// scanTask scans the taskColumns of one row.
func scanTask(scan func(dest ...any) error) (*ordostore.Task, error) {
	var (
		t                            ordostore.Task
		kind                         string
		dueAt, leaseUntil, createdAt int64
	)
	err := scan(&t.ID, &t.InstanceID, &kind, &t.Queue, &t.StepID, &t.Attempt, &t.Payload,
		&dueAt, &t.LeaseOwner, &leaseUntil, &t.Claim, &createdAt)
	if err != nil {
		return nil, err
	}
	t.Kind = ordotype.TaskKind(kind)
	t.DueAt = fromNanos(dueAt)
	t.LeaseUntil = fromNanos(leaseUntil)
	t.CreatedAt = fromNanos(createdAt)
	return &t, nil
}

// ExtendLeases moves the leases of the tasks among IDs still leased to
// Owner to end at Until, and returns how many it moved.
func (s *Store) ExtendLeases(ctx context.Context, params *ordostore.ExtendLeasesParams) (int, error) {
	if params.Owner == "" {
		return 0, fmt.Errorf("extend leases: %w: no owner given", ordotype.ErrInvalid)
	}
	if len(params.IDs) == 0 {
		return 0, nil
	}
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()

	stmt, err := s.wstmts.get(ctx, sqlExtendLeases)
	if err != nil {
		return 0, fmt.Errorf("extend leases: %w", err)
	}
	res, err := stmt.ExecContext(ctx, toNanos(params.Until), params.Owner, jsonInts(params.IDs))
	if err != nil {
		return 0, fmt.Errorf("extend leases: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("extend leases: %w", err)
	}
	return int(n), nil
}
