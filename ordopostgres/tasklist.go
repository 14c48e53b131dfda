package ordopostgres

import (
	"context"
	"fmt"

	"github.com/ordoflow/ordo/ordostore"
)

const (
	sqlGetTask = `SELECT ` + taskColumns + ` FROM tasks AS t WHERE t.id = $1`
	// The identity sequence's last value: every ID up to it was given to a
	// task (NULL before the first).
	sqlLastTaskID   = `SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence('tasks', 'id')::regclass), 0)`
	defaultTaskPage = 100
)

// ListTasks returns the tasks matching the filter in ID order; see
// [ordostore.Store.ListTasks].
func (s *Store) ListTasks(ctx context.Context, params *ordostore.ListTasksParams) ([]*ordostore.Task, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	args := argList{}
	sql := `SELECT ` + taskColumns + ` FROM tasks AS t WHERE t.id > ` + args.add(params.AfterID)
	if params.InstanceID != "" {
		sql += ` AND t.instance_id = ` + args.add(params.InstanceID)
	}
	if len(params.Kinds) > 0 {
		kinds := make([]string, len(params.Kinds))
		for i, k := range params.Kinds {
			kinds[i] = string(k)
		}
		sql += ` AND t.kind = ANY(` + args.add(kinds) + `::text[])`
	}
	if len(params.Queues) > 0 {
		sql += ` AND t.queue = ANY(` + args.add(params.Queues) + `::text[])`
	}
	limit := params.Limit
	if limit <= 0 {
		limit = defaultTaskPage
	}
	sql += ` ORDER BY t.id LIMIT ` + args.add(limit)
	tasks, err := query(ctx, s.pool, sql, args, scanTask)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	return tasks, nil
}

// GetTask returns one task; see [ordostore.Store.GetTask].
func (s *Store) GetTask(ctx context.Context, id int64) (*ordostore.Task, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	tasks, err := query(ctx, s.pool, sqlGetTask, []any{id}, scanTask)
	if err != nil {
		return nil, fmt.Errorf("get task: %w", err)
	}
	if len(tasks) == 1 {
		return tasks[0], nil
	}
	var last int64
	if err := s.pool.QueryRow(ctx, sqlLastTaskID).Scan(&last); err != nil {
		return nil, fmt.Errorf("get task: %w", err)
	}
	if id > 0 && id <= last {
		return nil, ordostore.TaskGone(id)
	}
	return nil, ordostore.TaskNotFound(id)
}
