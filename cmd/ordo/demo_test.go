package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordotype"
)

// `ordo dev --demo` starts orders on its own, and its simulated workers
// complete them through the worker API.
func TestDevDemo(t *testing.T) {
	t.Parallel()
	bin := ordoBinary(t)
	srv := startServer(t, bin, nil, "dev", "--demo", "--db", filepath.Join(t.TempDir(), "dev.db"), "--addr", "127.0.0.1:0")
	// The hints come after the "listening on" line.
	require.Eventually(t, func() bool { return strings.Contains(srv.stdout(), "Stop with Ctrl-C") }, 10*time.Second, 10*time.Millisecond)
	out := srv.stdout()
	require.Contains(t, out, "deployed  order-remote v1")
	require.Contains(t, out, "demo-payments")
	require.Contains(t, out, "ordo list --workflow order-remote")

	ctx := context.Background()
	client, err := ordoclient.New(srv.url, nil)
	require.NoError(t, err)
	var done []ordoclient.InstanceSummary
	require.Eventually(t, func() bool {
		list, err := client.List(ctx, &ordoclient.ListParams{Workflow: "order-remote", Statuses: []ordotype.Status{ordotype.StatusCompleted}})
		require.NoError(t, err)
		done = list.Instances
		return len(done) >= 2
	}, 45*time.Second, 100*time.Millisecond, "no demo order completed; the server printed:\n%s", srv.stdout())

	inst, err := client.Get(ctx, done[0].ID)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(inst.BusinessKey, "demo-"), inst.BusinessKey)
	for _, s := range inst.Steps {
		require.Equal(t, ordotype.StepCompleted, s.Status, s.ID)
		var o struct{ Worker string }
		require.NoError(t, json.Unmarshal(s.Output, &o), string(s.Output))
		require.True(t, strings.HasPrefix(o.Worker, "demo-"), "%s was done by %q", s.ID, o.Worker)
	}
	require.Equal(t, 0, srv.stop(t), srv.stdout())
}
