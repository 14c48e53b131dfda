package ordosqlite

import (
	"context"
	"fmt"

	"github.com/ordoflow/ordo/ordostore"
)

// Statements of DueTasks: ordered range scans of tasks_kind_queue_due, each
// task joined to its instance's state. A page that goes on from a task
// reads the rest of that task's instant by ID (the index's implicit last
// column), then the later instants; one condition on (due_at, id) would
// scan that instant from its start. Only the columns not known from the
// filter are read: each column read costs the driver more than the b-tree.
const (
	dueTaskColumns  = `t.id, t.instance_id, t.step_id, t.attempt, t.payload, t.due_at, t.claim, t.created_at, i.state`
	dueTasksFrom    = ` FROM tasks t JOIN instances i ON i.id = t.instance_id WHERE t.kind = ? AND t.queue = ? AND `
	sqlDueTasks     = `SELECT ` + dueTaskColumns + dueTasksFrom + `t.due_at <= ? AND t.lease_until < ? ORDER BY t.due_at, t.id LIMIT ?`
	sqlDueTasksSame = `SELECT ` + dueTaskColumns + dueTasksFrom + `t.due_at = ? AND t.id > ? AND t.lease_until < ? ORDER BY t.id LIMIT ?`
	sqlDueTasksNext = `SELECT ` + dueTaskColumns + dueTasksFrom + `t.due_at > ? AND t.due_at <= ? AND t.lease_until < ? ORDER BY t.due_at, t.id LIMIT ?`
)

var _ ordostore.DueTasksReader = (*Store)(nil)

// DueTasks returns due, unleased tasks without leasing them, from the read
// pool; see [ordostore.DueTasksReader]. The file is locked to this process,
// so no other process can take them.
func (s *Store) DueTasks(ctx context.Context, params *ordostore.DueTasksParams) ([]ordostore.DueTask, error) {
	if params.Limit <= 0 {
		return []ordostore.DueTask{}, nil
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	kind, now := string(params.Kind), toNanos(params.Now)
	tasks := []ordostore.DueTask{}
	page := func(query string, args ...any) error {
		rows, err := s.read(ctx, query, append([]any{kind, params.Queue}, args...))
		if err != nil {
			return err
		}
		found, err := collect(rows, func(scan func(dest ...any) error) (ordostore.DueTask, error) {
			return scanDueTask(scan, params)
		})
		tasks = append(tasks, found...)
		return err
	}
	var err error
	if params.AfterID == 0 {
		err = page(sqlDueTasks, now, now, params.Limit)
	} else {
		after := toNanos(params.AfterDueAt)
		if after <= now {
			err = page(sqlDueTasksSame, after, params.AfterID, now, params.Limit)
		}
		if err == nil && len(tasks) < params.Limit {
			err = page(sqlDueTasksNext, after, now, now, params.Limit-len(tasks))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("due tasks: %w", err)
	}
	return tasks, nil
}

// scanDueTask scans the dueTaskColumns of one row of a DueTasks query.
func scanDueTask(scan func(dest ...any) error, params *ordostore.DueTasksParams) (ordostore.DueTask, error) {
	var (
		t                ordostore.Task
		state            []byte
		dueAt, createdAt int64
	)
	if err := scan(&t.ID, &t.InstanceID, &t.StepID, &t.Attempt, &t.Payload, &dueAt, &t.Claim, &createdAt, &state); err != nil {
		return ordostore.DueTask{}, err
	}
	t.Kind, t.Queue = params.Kind, params.Queue
	t.DueAt = fromNanos(dueAt)
	t.LeaseUntil = fromNanos(0) // unleased, as scanTask reads it
	t.CreatedAt = fromNanos(createdAt)
	return ordostore.DueTask{Task: &t, InstanceState: state}, nil
}
