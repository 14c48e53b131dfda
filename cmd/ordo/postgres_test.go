package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// pgSchema returns the test server's URL and a new schema name, dropped at
// the end of the test, or skips the test.
func pgSchema(t *testing.T) (string, string) {
	t.Helper()
	u := os.Getenv("ORDO_TEST_POSTGRES_URL")
	if u == "" {
		t.Skip("ORDO_TEST_POSTGRES_URL is not set; skipping PostgreSQL tests")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "ordocli_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, u)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
		require.NoError(t, err)
	})
	return u, schema
}

// TestServerBinaryOnPostgres runs real `ordo server` processes on one
// PostgreSQL schema: an API-only node commits starts that wait until a
// timers node fires their timers. Then prune deletes the finished ones.
func TestServerBinaryOnPostgres(t *testing.T) {
	t.Parallel()
	bin := ordoBinary(t)
	pgURL, schema := pgSchema(t)
	db := []string{"--db", pgURL, "--schema", schema}

	// Migrations first; the servers then start with --migrate=false.
	out, errOut, code := ordo(t, bin, nil, append([]string{"migrate"}, db...)...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "migrated from version 0 to 2")
	out, errOut, code = ordo(t, bin, nil, append([]string{"migrate", "-o", "json"}, db...)...)
	require.Equal(t, 0, code, errOut)
	var mig struct{ From, To int }
	require.NoError(t, json.Unmarshal([]byte(out), &mig), out)
	require.Equal(t, 2, mig.From)
	require.Equal(t, 2, mig.To)

	api := startServer(t, bin, nil, append([]string{"server", "--addr", "127.0.0.1:0", "--roles", "api", "--migrate=false"}, db...)...)
	require.Contains(t, api.stdout(), "roles     api")
	require.Contains(t, api.stdout(), "schema "+schema+" (PostgreSQL)")
	cli := []string{"--server", api.url}

	dir := t.TempDir()
	defFile := filepath.Join(dir, "e2e.yaml")
	require.NoError(t, os.WriteFile(defFile, []byte(e2eDefinition), 0o600))
	_, errOut, code = ordo(t, bin, nil, append([]string{"deploy", defFile}, cli...)...)
	require.Equal(t, 0, code, errOut)
	var ids []string
	for range 3 {
		out, errOut, code = ordo(t, bin, nil, append([]string{"start", "e2e", "--input", `{"orderId":"o-1"}`}, cli...)...)
		require.Equal(t, 0, code, errOut)
		ids = append(ids, strings.TrimSpace(out))
	}
	status := func(id string) string {
		out, errOut, code := ordo(t, bin, nil, append([]string{"get", id, "-o", "json"}, cli...)...)
		require.Equal(t, 0, code, errOut)
		var inst struct{ Status string }
		require.NoError(t, json.Unmarshal([]byte(out), &inst), out)
		return inst.Status
	}
	// The API node runs no timers: its 5 ms timers stay unfired.
	time.Sleep(500 * time.Millisecond)
	for _, id := range ids {
		require.NotEqual(t, "completed", status(id), "the api node fired timers")
	}

	timers := startServer(t, bin, nil, append([]string{"server", "--addr", "127.0.0.1:0", "--roles", "timers,executor,effects"}, db...)...)
	require.Contains(t, timers.stdout(), "API       not served (no api role)")
	for _, id := range ids {
		require.Eventually(t, func() bool { return status(id) == "completed" }, 30*time.Second, 50*time.Millisecond)
	}
	// The timers node answers health checks, not the API.
	_, errOut, code = ordo(t, bin, nil, "list", "--server", timers.url)
	require.NotEqual(t, 0, code)
	require.Contains(t, errOut, "does not run the api role")

	require.Equal(t, 0, timers.stop(t))
	require.Equal(t, 0, api.stop(t))

	// Nothing finished 30 days ago; everything finished a moment ago.
	out, errOut, code = ordo(t, bin, nil, append([]string{"prune", "--older-than", "30d"}, db...)...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "deleted 0 finished instances")
	time.Sleep(10 * time.Millisecond)
	out, errOut, code = ordo(t, bin, nil, append([]string{"prune", "--older-than", "1ms", "--dry-run"}, db...)...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "would delete 3 finished instances")
	out, errOut, code = ordo(t, bin, nil, append([]string{"prune", "--older-than", "1ms", "--batch", "2", "-o", "json"}, db...)...)
	require.Equal(t, 0, code, errOut)
	var pruned struct{ Instances int }
	require.NoError(t, json.Unmarshal([]byte(out), &pruned), out)
	require.Equal(t, 3, pruned.Instances)
}

func TestMaintenanceCommands(t *testing.T) {
	t.Parallel()
	bin := ordoBinary(t)
	db := filepath.Join(t.TempDir(), "ordo.db")

	out, errOut, code := ordo(t, bin, nil, "migrate", "--db", db)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "migrated from version 0 to 2")
	out, errOut, code = ordo(t, bin, nil, "migrate", "--db", db)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "at version 2, up to date")
	out, errOut, code = ordo(t, bin, nil, "prune", "--db", db, "--older-than", "2w")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "deleted 0 finished instances")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"prune", "--db", db}, "--older-than is required"},
		{[]string{"prune", "--db", db, "--older-than", "soon"}, `invalid duration "soon"`},
		{[]string{"prune", "--db", db, "--older-than", "30d", "--batch", "0"}, "--batch must be positive"},
		{[]string{"prune", "--older-than", "30d"}, "--db is required"},
		{[]string{"prune", "--db", filepath.Join(t.TempDir(), "none.db"), "--older-than", "30d"}, "no such file"},
		{[]string{"migrate", "--db", db, "--schema", "x"}, "PostgreSQL only"},
	} {
		_, errOut, code := ordo(t, bin, nil, tc.args...)
		require.Equal(t, 2, code, "%v: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.want, tc.args)
	}
}
