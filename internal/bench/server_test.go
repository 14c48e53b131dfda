package bench

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordotype"
	"github.com/ordoflow/ordo/server"
)

func TestRunServer_BothWorkloads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng, err := ordo.Open(ctx, ordo.SQLite(filepath.Join(t.TempDir(), "ordo.db")), &ordo.Config{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	srv, err := server.New(&server.Options{Engine: eng, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	t.Cleanup(func() {
		require.NoError(t, srv.Stop(context.WithoutCancel(ctx)))
		require.NoError(t, eng.Close(context.WithoutCancel(ctx)))
	})
	base := "http://" + srv.Addr()

	for _, tc := range []struct {
		workload string
		tasks    int64 // 60 instances
	}{
		{WorkloadLinear3, 60 * 3},
		{WorkloadOrder, 60*5 + 15}, // a gift for one order in four
	} {
		res, err := RunServer(ctx, ServerOptions{Server: base, Workload: tc.workload, Instances: 60, Concurrency: 8, Workers: 2, WorkerConcurrency: 4})
		require.NoError(t, err, tc.workload)
		require.Equal(t, "server", res.Store)
		require.Equal(t, 60, res.Instances)
		require.Equal(t, 2, res.Workers)
		require.Equal(t, 4, res.WorkerConcurrency)
		require.Equal(t, tc.tasks, res.Tasks, "every step of every instance completed once")
		require.Positive(t, res.Polls)
		require.Positive(t, res.PerSecond)
		require.GreaterOrEqual(t, res.P99Ms, res.P50Ms)
		require.Positive(t, res.P50Ms)

		def, _, err := RemoteDefinition(tc.workload)
		require.NoError(t, err)
		c, err := ordoclient.New(base, nil)
		require.NoError(t, err)
		list, err := c.List(ctx, &ordoclient.ListParams{Workflow: def.Name(), Statuses: []ordotype.Status{ordotype.StatusCompleted}})
		require.NoError(t, err)
		require.Len(t, list.Instances, 60, "every instance completed")
	}

	_, err = RunServer(ctx, ServerOptions{Server: base, Workload: "nope", Instances: 1, Concurrency: 1})
	require.ErrorContains(t, err, `unknown workload "nope"`)
	_, err = RunServer(ctx, ServerOptions{Server: "http://127.0.0.1:1", Workload: WorkloadOrder, Instances: 1, Concurrency: 1})
	require.ErrorContains(t, err, "is not ready")
}
