package ordopostgres

import (
	"context"
	"fmt"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// CountInstances counts instances per workflow and status; see
// [ordostore.Store.CountInstances].
func (s *Store) CountInstances(ctx context.Context, params *ordostore.CountInstancesParams) ([]ordostore.InstanceCount, error) {
	if params == nil {
		params = &ordostore.CountInstancesParams{}
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	sql, args := `SELECT workflow, status, count(*) FROM instances`, argList{}
	if len(params.Statuses) > 0 {
		statuses := make([]string, len(params.Statuses))
		for i, st := range params.Statuses {
			statuses[i] = string(st)
		}
		sql += ` WHERE status = ANY(` + args.add(statuses) + `::text[])`
	}
	sql += ` GROUP BY workflow, status ORDER BY workflow COLLATE "C", status COLLATE "C"`
	out, err := query(ctx, s.pool, sql, args, func(scan func(dest ...any) error) (c ordostore.InstanceCount, err error) {
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

	sql := `SELECT kind, queue, count(*), count(*) FILTER (WHERE lease_owner <> '' AND lease_until < $1)
	FROM tasks GROUP BY kind, queue ORDER BY kind COLLATE "C", queue COLLATE "C"`
	out, err := query(ctx, s.pool, sql, []any{toNanos(params.Now)}, func(scan func(dest ...any) error) (c ordostore.QueueCount, err error) {
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
