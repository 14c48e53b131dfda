package ordopostgres

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// Statements of the task queue. A task is claimable when due_at <= now and
// lease_until < now: an unleased task has lease_until 0.
const (
	taskColumns = `t.id, t.instance_id, t.kind, t.queue, t.step_id, t.attempt, t.payload, t.due_at, t.lease_owner, t.lease_until, t.claim, t.created_at`

	sqlClaimSet = `UPDATE tasks AS t SET lease_owner = $1, lease_until = $2, claim = t.claim + 1`

	// A few (kind, queue) pairs: for each, an ordered range scan of
	// tasks_kind_queue_due that locks the first claimable tasks it finds,
	// skipping those another transaction has locked, and stops at LIMIT;
	// then the first LIMIT of all the pairs are claimed. The lease
	// condition is in the locking subquery, so PostgreSQL checks it again
	// on a row that another claim changed and committed meanwhile.
	sqlClaimPairs = sqlClaimSet + `
	FROM (
		SELECT c.id FROM unnest($3::text[]) AS k(kind) CROSS JOIN unnest($4::text[]) AS q(queue)
		CROSS JOIN LATERAL (
			SELECT id, due_at FROM tasks
			WHERE kind = k.kind AND queue = q.queue AND due_at <= $5 AND lease_until < $5
			ORDER BY due_at, id LIMIT $6
			FOR UPDATE SKIP LOCKED
		) AS c
		ORDER BY c.due_at, c.id LIMIT $6
	) AS claimed
	WHERE t.id = claimed.id
	RETURNING ` + taskColumns
	// A few kinds, any queue: the same through tasks_kind_due.
	sqlClaimKinds = sqlClaimSet + `
	FROM (
		SELECT c.id FROM unnest($3::text[]) AS k(kind)
		CROSS JOIN LATERAL (
			SELECT id, due_at FROM tasks
			WHERE kind = k.kind AND due_at <= $4 AND lease_until < $4
			ORDER BY due_at, id LIMIT $5
			FOR UPDATE SKIP LOCKED
		) AS c
		ORDER BY c.due_at, c.id LIMIT $5
	) AS claimed
	WHERE t.id = claimed.id
	RETURNING ` + taskColumns
	// Many pairs: for each kind, the same through tasks_kind_due, keeping
	// the tasks of the queues asked for. When those queues hold most of the
	// kind's due tasks, the scan stops after about LIMIT rows; when they
	// are a few among busy others, PostgreSQL may prefer to read them from
	// tasks_kind_queue_due and sort them.
	sqlClaimManyPairs = sqlClaimSet + `
	FROM (
		SELECT c.id FROM unnest($3::text[]) AS k(kind)
		CROSS JOIN LATERAL (
			SELECT id, due_at FROM tasks
			WHERE kind = k.kind AND queue = ANY($4::text[]) AND due_at <= $5 AND lease_until < $5
			ORDER BY due_at, id LIMIT $6
			FOR UPDATE SKIP LOCKED
		) AS c
		ORDER BY c.due_at, c.id LIMIT $6
	) AS claimed
	WHERE t.id = claimed.id
	RETURNING ` + taskColumns

	sqlNextDuePairs = `SELECT min(n.due_at) FROM unnest($1::text[]) AS k(kind) CROSS JOIN unnest($2::text[]) AS q(queue)
	CROSS JOIN LATERAL (
		SELECT due_at FROM tasks WHERE kind = k.kind AND queue = q.queue AND lease_owner = '' ORDER BY due_at LIMIT 1
	) AS n`
	sqlNextDueKinds = `SELECT min(n.due_at) FROM unnest($1::text[]) AS k(kind)
	CROSS JOIN LATERAL (
		SELECT due_at FROM tasks WHERE kind = k.kind AND lease_owner = '' ORDER BY due_at LIMIT 1
	) AS n`
	sqlNextDueManyPairs = `SELECT min(n.due_at) FROM unnest($1::text[]) AS k(kind)
	CROSS JOIN LATERAL (
		SELECT due_at FROM tasks WHERE kind = k.kind AND queue = ANY($2::text[]) AND lease_owner = '' ORDER BY due_at LIMIT 1
	) AS n`

	// The rows are locked in ID order, as Apply locks the tasks it
	// completes, so that the two cannot deadlock.
	sqlReleaseAllLeases = `UPDATE tasks SET lease_owner = '', lease_until = 0
	WHERE id IN (SELECT id FROM tasks WHERE lease_owner <> '' ORDER BY id FOR UPDATE)`
	sqlReleaseOwnerLeases = `UPDATE tasks SET lease_owner = '', lease_until = 0
	WHERE id IN (SELECT id FROM tasks WHERE lease_owner = $1 ORDER BY id FOR UPDATE)`
	// Rows are locked in ID order, as Apply locks them, so the two cannot
	// deadlock.
	sqlExtendLeases = `UPDATE tasks SET lease_until = $1
	WHERE id IN (SELECT id FROM tasks WHERE lease_owner = $2 AND id = ANY($3) ORDER BY id FOR UPDATE)`
)

// maxPairs is the most (kind, queue) pairs that ClaimTasks and NextTaskDue
// look up one by one, each with an ordered index scan that stops at its
// LIMIT. Beyond it they look up each kind, keeping the queues asked for (see
// docs/storage.md).
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

// query returns the statement and arguments that look the filter up: kinds
// when any queue will do, pairs for up to maxPairs (kind, queue) pairs,
// manyPairs beyond. The first arguments are the kinds and the queues (none
// for kinds); extra are appended to them.
func (f *taskFilter) query(pairs, kinds, manyPairs string, extra ...any) (string, []any) {
	switch {
	case len(f.queues) == 0:
		return kinds, append([]any{f.kinds}, extra...)
	case len(f.kinds)*len(f.queues) <= maxPairs:
		return pairs, append([]any{f.kinds, f.queues}, extra...)
	default:
		return manyPairs, append([]any{f.kinds, f.queues}, extra...)
	}
}

// ClaimTasks leases up to Limit due, unleased tasks to Owner, oldest due
// first; see [ordostore.Store.ClaimTasks]. Kinds and Owner are required and
// LeaseUntil must be after Now (ordotype.ErrInvalid); nil or empty Queues
// means any queue. The tasks are returned in (DueAt, ID) order.
//
// A claim is one statement. Tasks that another process is claiming at the
// same moment are skipped, not waited for (FOR UPDATE SKIP LOCKED), so
// nodes claiming from the same queues never get the same task and never
// block each other.
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

	sql, args := filter.query(sqlClaimPairs, sqlClaimKinds, sqlClaimManyPairs, toNanos(params.Now), params.Limit)
	args = append([]any{params.Owner, toNanos(params.LeaseUntil)}, args...)
	tasks, err := query(ctx, s.pool, sql, args, scanTask)
	if err != nil {
		return nil, fmt.Errorf("claim tasks: %w", err)
	}
	// RETURNING gives no order.
	slices.SortFunc(tasks, func(a, b *ordostore.Task) int {
		return cmp.Or(a.DueAt.Compare(b.DueAt), cmp.Compare(a.ID, b.ID))
	})
	return tasks, nil
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

	sql, args := filter.query(sqlNextDuePairs, sqlNextDueKinds, sqlNextDueManyPairs)
	var next *int64
	if err := s.pool.QueryRow(ctx, sql, args...).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("next task due: %w", err)
	}
	if next == nil {
		return time.Time{}, false, nil
	}
	return fromNanos(*next), true, nil
}

// ReleaseLeases clears the leases of every task (owner "") or of the tasks
// leased to owner, and returns how many it cleared.
func (s *Store) ReleaseLeases(ctx context.Context, owner string) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()

	sql, args := sqlReleaseAllLeases, []any(nil)
	if owner != "" {
		sql, args = sqlReleaseOwnerLeases, []any{owner}
	}
	tag, err := s.pool.Exec(ctx, sql, args...)
	if err != nil {
		return 0, fmt.Errorf("release leases: %w", err)
	}
	if tag.RowsAffected() > 0 {
		// The tasks can be claimed again: wake the other nodes.
		if _, err := s.pool.Exec(ctx, sqlNotify, s.channel); err != nil {
			s.logger.WarnContext(ctx, "failed to send a wake-up", slog.String("schema", s.schema), slog.Any("error", err))
		}
	}
	return int(tag.RowsAffected()), nil
}

// CountTasks returns how many tasks, leased or not, match the filter.
func (s *Store) CountTasks(ctx context.Context, params *ordostore.CountTasksParams) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()

	sql, args := `SELECT count(*) FROM tasks WHERE TRUE`, argList{}
	if params.InstanceID != "" {
		sql += ` AND instance_id = ` + args.add(params.InstanceID)
	}
	if len(params.Kinds) > 0 {
		kinds := make([]string, len(params.Kinds))
		for i, k := range params.Kinds {
			kinds[i] = string(k)
		}
		sql += ` AND kind = ANY(` + args.add(kinds) + `::text[])`
	}
	var n int
	if err := s.pool.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
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

	tag, err := s.pool.Exec(ctx, sqlExtendLeases, toNanos(params.Until), params.Owner, params.IDs)
	if err != nil {
		return 0, fmt.Errorf("extend leases: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
