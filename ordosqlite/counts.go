package ordosqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// CountInstances counts instances per workflow and status; see
// [ordostore.Store.CountInstances]. With statuses given it reads the
// instances_status index for those statuses only.
func (s *Store) CountInstances(ctx context.Context, params *ordostore.CountInstancesParams) ([]ordostore.InstanceCount, error) {
	if params == nil {
		params = &ordostore.CountInstancesParams{}
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	query, args := `SELECT workflow, status, COUNT(*) FROM instances`, []any{}
	if len(params.Statuses) > 0 {
		statuses, err := json.Marshal(params.Statuses)
		if err != nil {
			return nil, fmt.Errorf("count instances: %w", err)
		}
		query, args = query+` WHERE status IN (SELECT value FROM json_each(?))`, append(args, string(statuses))
	}
	query += ` GROUP BY workflow, status ORDER BY workflow, status`
	rows, err := s.read(ctx, query, args)
	if err != nil {
		return nil, fmt.Errorf("count instances: %w", err)
	}
	out, err := collect(rows, func(scan func(dest ...any) error) (c ordostore.InstanceCount, err error) {
		var status string
		err = scan(&c.Workflow, &status, &c.N)
		c.Status = ordotype.Status(status)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("count instances: %w", err)
	}
	return out, nil
}

// CountQueues counts tasks per kind and queue; see
// [ordostore.Store.CountQueues].
func (s *Store) CountQueues(ctx context.Context, params *ordostore.CountQueuesParams) ([]ordostore.QueueCount, error) {
	if params == nil {
		params = &ordostore.CountQueuesParams{}
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	rows, err := s.read(ctx, `SELECT kind, queue, COUNT(*), COUNT(*) FILTER (WHERE lease_owner != '' AND lease_until < ?)
	FROM tasks GROUP BY kind, queue ORDER BY kind, queue`, []any{toNanos(params.Now)})
	if err != nil {
		return nil, fmt.Errorf("count queues: %w", err)
	}
	out, err := collect(rows, func(scan func(dest ...any) error) (c ordostore.QueueCount, err error) {
		var kind string
		err = scan(&kind, &c.Queue, &c.N, &c.Expired)
		c.Kind = ordotype.TaskKind(kind)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("count queues: %w", err)
	}
	return out, nil
}
