package ordopostgres

import (
	"context"
	"fmt"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// Statements of PruneInstances. The instances' events and tasks go with
// them (ON DELETE CASCADE). SKIP LOCKED leaves alone a row another
// transaction holds: it is not finished for long, or it is being pruned by
// another process.
const (
	sqlPruneInstances = `DELETE FROM instances WHERE id IN (
	SELECT id FROM instances
	WHERE status = ANY($1::text[]) AND finished_at IS NOT NULL AND finished_at < $2
	ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)`
	sqlCountPrunable = `SELECT count(*) FROM instances
	WHERE status = ANY($1::text[]) AND finished_at IS NOT NULL AND finished_at < $2`
)

// PruneInstances deletes finished instances with their journals and tasks,
// one short transaction per batch; see [ordostore.Store.PruneInstances].
func (s *Store) PruneInstances(ctx context.Context, params *ordostore.PruneParams) (int, error) {
	if params == nil || params.FinishedBefore.IsZero() {
		return 0, fmt.Errorf("prune instances: %w: FinishedBefore is required", ordotype.ErrInvalid)
	}
	if params.Batch < 0 {
		return 0, fmt.Errorf("prune instances: %w: Batch must not be negative, got %d", ordotype.ErrInvalid, params.Batch)
	}
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.leave()

	statuses := make([]string, len(ordostore.PrunableStatuses))
	for i, st := range ordostore.PrunableStatuses {
		statuses[i] = string(st)
	}
	cutoff := toNanos(params.FinishedBefore)
	if params.DryRun {
		var n int
		if err := s.pool.QueryRow(ctx, sqlCountPrunable, statuses, cutoff).Scan(&n); err != nil {
			return 0, fmt.Errorf("prune instances: %w", err)
		}
		return n, nil
	}
	batch := params.Batch
	if batch == 0 {
		batch = ordostore.DefaultPruneBatch
	}
	total := 0
	for {
		tag, err := s.pool.Exec(ctx, sqlPruneInstances, statuses, cutoff, batch)
		if err != nil {
			return total, fmt.Errorf("prune instances: %w", err)
		}
		n := int(tag.RowsAffected())
		total += n
		if n < batch {
			return total, nil
		}
	}
}
