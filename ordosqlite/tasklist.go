package ordosqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ordoflow/ordo/ordostore"
)

const (
	sqlGetTask      = `SELECT ` + taskColumns + ` FROM tasks WHERE id = ?`
	sqlLastTaskID   = `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'tasks'), 0)`
	defaultTaskPage = 100
)

// ListTasks returns the tasks matching the filter in ID order; see
// [ordostore.Store.ListTasks].
func (s *Store) ListTasks(ctx context.Context, params *ordostore.ListTasksParams) ([]*ordostore.Task, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	query, args := `SELECT `+taskColumns+` FROM tasks WHERE id > ?`, []any{params.AfterID}
	if params.InstanceID != "" {
		query, args = query+` AND instance_id = ?`, append(args, params.InstanceID)
	}
	if len(params.Kinds) > 0 {
		kinds, err := json.Marshal(params.Kinds)
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		query, args = query+` AND kind IN (SELECT value FROM json_each(?))`, append(args, string(kinds))
	}
	if len(params.Queues) > 0 {
		queues, err := json.Marshal(params.Queues)
		if err != nil {
			return nil, fmt.Errorf("list tasks: %w", err)
		}
		query, args = query+` AND queue IN (SELECT value FROM json_each(?))`, append(args, string(queues))
	}
	limit := params.Limit
	if limit <= 0 {
		limit = defaultTaskPage
	}
	query, args = query+` ORDER BY id LIMIT ?`, append(args, limit)
	rows, err := s.read(ctx, query, args)
	if err != nil {
		return nil, fmt.Errorf("list tasks: %w", err)
	}
	tasks, err := collect(rows, scanTask)
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

	rows, err := s.read(ctx, sqlGetTask, []any{id})
	if err != nil {
		return nil, fmt.Errorf("get task: %w", err)
	}
	tasks, err := collect(rows, scanTask)
	if err != nil {
		return nil, fmt.Errorf("get task: %w", err)
	}
	if len(tasks) == 1 {
		return tasks[0], nil
	}
	var last int64
	if err := s.readRow(ctx, sqlLastTaskID, nil, &last); err != nil {
		return nil, fmt.Errorf("get task: %w", err)
	}
	if id > 0 && id <= last {
		return nil, ordostore.TaskGone(id)
	}
	return nil, ordostore.TaskNotFound(id)
}
