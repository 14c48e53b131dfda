package ordopostgres

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// TestApplyPlansUseIndexes: on small tables that autovacuum has not
// analyzed (a new schema, when a connection first plans and caches its
// statements), the planner reads the whole table for a few keys (without
// sqlNoSeqScan this test fails on tasks), and keeps that plan as the table
// grows. Under sqlNoSeqScan, as Apply runs them, every statement of Apply
// looks its rows up by index.
func TestApplyPlansUseIndexes(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()

	exec(t, s.schema, `INSERT INTO instances (id, workflow, version, status, seq, state, created_at, updated_at)
		SELECT 'inst-' || n, 'order', 1, 'running', 1, convert_to(repeat('x', 500), 'UTF8'), 0, 0 FROM generate_series(1, 300) AS n`)
	exec(t, s.schema, `INSERT INTO tasks (instance_id, kind, queue, step_id, attempt, due_at, created_at)
		SELECT 'inst-' || n, 'step', 'q', '', 1, n, 0 FROM generate_series(1, 300) AS n`)

	ids := []string{"inst-1", "inst-2", "inst-3"}
	taskIDs := []int64{1, 2, 3}
	for _, c := range []struct {
		sql  string
		args []any
	}{
		{sqlLockSeqs, []any{ids}},
		{sqlLockClaims, []any{taskIDs}},
		{sqlDeleteTasks, []any{taskIDs}},
		{sqlUpdateInstances, []any{ids, []int64{1, 1, 1}, []string{"running", "running", "running"}, []string{"", "", ""},
			[]int64{2, 2, 2}, [][]byte{nil, nil, nil}, []int64{0, 0, 0}, []int64{0, 0, 0}, 3}},
		{sqlUpdateSeqs, []any{ids, []int64{1, 1, 1}, []int64{2, 2, 2}, 3}},
	} {
		tx, err := s.pool.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, sqlNoSeqScan)
		require.NoError(t, err)
		rows, err := tx.Query(ctx, "EXPLAIN "+c.sql, c.args...)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.NoError(t, tx.Rollback(ctx))
		plan := strings.Join(lines, "\n")
		require.NotContains(t, plan, "Seq Scan", "%s\n%s", c.sql, plan)
		require.Contains(t, plan, "Index", "%s\n%s", c.sql, plan)
	}
}
