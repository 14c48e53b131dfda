package ordosqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// prunableFilter selects the finished instances that finished before the
// first parameter.
var prunableFilter = func() string {
	quoted := make([]string, len(ordostore.PrunableStatuses))
	for i, st := range ordostore.PrunableStatuses {
		quoted[i] = "'" + string(st) + "'"
	}
	return `status IN (` + strings.Join(quoted, ", ") + `) AND finished_at IS NOT NULL AND finished_at < ?`
}()

// Statements of PruneInstances. The instances' events and tasks go with
// them (ON DELETE CASCADE).
var (
	sqlPruneInstances = `DELETE FROM instances WHERE id IN (SELECT id FROM instances WHERE ` + prunableFilter + ` ORDER BY id LIMIT ?)`
	sqlCountPrunable  = `SELECT count(*) FROM instances WHERE ` + prunableFilter
)

// PruneInstances deletes finished instances with their journals and tasks,
// one short write transaction per batch, so that the engine's commits run
// between them; see [ordostore.Store.PruneInstances].
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

	cutoff := toNanos(params.FinishedBefore)
	if params.DryRun {
		var n int
		if err := s.reader.QueryRowContext(ctx, sqlCountPrunable, cutoff).Scan(&n); err != nil {
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
		res, err := s.writer.ExecContext(ctx, sqlPruneInstances, cutoff, batch)
		if err != nil {
			return total, fmt.Errorf("prune instances: %w", err)
		}
		n64, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("prune instances: %w", err)
		}
		total += int(n64)
		if int(n64) < batch {
			return total, nil
		}
	}
}
