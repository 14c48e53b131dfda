package ordo_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordopostgres"
)

// pgEngines starts n engines on one new PostgreSQL schema, dropped at the
// end of the test.
func pgEngines(t *testing.T, n int, cfg *ordo.Config) []*ordo.Engine {
	t.Helper()
	u := os.Getenv("ORDO_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("ORDO_TEST_POSTGRES_URL is not set; skipping PostgreSQL tests")
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "ordotest_remote_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, u)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		require.NoError(t, err)
	})
	var engines []*ordo.Engine
	for range n {
		store, err := ordopostgres.Open(t.Context(), u, &ordopostgres.Config{Schema: schema, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		require.NoError(t, err)
		eng, err := ordo.New(t.Context(), store, cfg)
		require.NoError(t, err)
		t.Cleanup(func() {
			require.NoError(t, eng.Close(context.Background()))
			require.NoError(t, store.Close())
		})
		engines = append(engines, eng)
	}
	return engines
}

// TestRemote_TwoNodes runs remote tasks across two engines on one
// PostgreSQL schema: a poll on one node finds the tasks the other made, and
// a late result sent to one node after the other re-delivered the task is
// refused.
func TestRemote_TwoNodes(t *testing.T) {
	t.Parallel()
	nodes := pgEngines(t, 2, &ordo.Config{
		PollInterval: 50 * time.Millisecond, TaskLease: 300 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
	})
	a, b := nodes[0], nodes[1]
	ctx := t.Context()
	deployYAML(t, a, paymentYAML)

	id, err := a.Start(ctx, "pay", map[string]any{"amount": 3})
	require.NoError(t, err)
	// Node b did not make the task: its poll finds it at its poll interval.
	first := pollOne(t, b, "w1", "payment")
	require.Equal(t, id, first.InstanceID)

	// No heartbeat: the lease runs out, and node a delivers it again.
	second := pollOne(t, a, "w2", "payment")
	require.Equal(t, first.ID, second.ID)
	require.Equal(t, first.Claim+1, second.Claim)
	require.Equal(t, first.IdempotencyKey, second.IdempotencyKey)

	require.ErrorIs(t, b.CompleteTask(ctx, first.ID, first.Claim, &ordo.TaskCompletion{Output: map[string]any{"by": "w1"}}), ordo.ErrLeaseLost)
	require.NoError(t, b.CompleteTask(ctx, second.ID, second.Claim, &ordo.TaskCompletion{Output: map[string]any{"by": "w2"}}))

	ship := pollOne(t, a, "w1", "shipping")
	require.NoError(t, a.CompleteTask(ctx, ship.ID, ship.Claim, nil))
	inst, err := a.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.JSONEq(t, `{"by":"w2"}`, string(inst.Step("charge").Output))
	require.Len(t, eventsOf(t, a, id, "step.completed"), 2)
	rejected := eventsOf(t, a, id, "step.rejected")
	require.Len(t, rejected, 1)
	require.Equal(t, "w1", rejected[0]["worker"])
}
