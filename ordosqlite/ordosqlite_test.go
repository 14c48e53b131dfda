package ordosqlite

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordostore/ordostoretest"
	"github.com/ordoflow/ordo/ordotype"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testConfig is the configuration of the tests' stores: defaults, silent.
func testConfig() *Config {
	return &Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// openTest opens a store on a new file and closes it at the end of the test.
func openTest(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "ordo.db"), testConfig())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	ordostoretest.Exercise(t.Context(), t, func(t *testing.T) ordostore.Store { return openTest(t) })
}

func TestOpen(t *testing.T) {
	t.Parallel()

	t.Run("Pragmas", func(t *testing.T) {
		t.Parallel()
		s := openTest(t)
		ctx := t.Context()

		pragma := func(t *testing.T, db interface {
			QueryRowContext(context.Context, string, ...any) *sql.Row
		}, name string) string {
			t.Helper()
			var v string
			require.NoError(t, db.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v))
			return v
		}
		require.Equal(t, "2", pragma(t, s.writer, "synchronous"), "synchronous=FULL on the writer")
		require.Equal(t, "wal", pragma(t, s.writer, "journal_mode"))
		require.Equal(t, "1", pragma(t, s.writer, "foreign_keys"))
		require.Equal(t, "5000", pragma(t, s.writer, "busy_timeout"))
		require.Equal(t, "0", pragma(t, s.writer, "query_only"))
		require.Equal(t, "2", pragma(t, s.writer, "temp_store"), "temp_store=MEMORY")

		// Every connection of the read pool has the pragmas: hold them all
		// at once so that each is a different one.
		for range defaultReadConns {
			conn, err := s.reader.Conn(ctx)
			require.NoError(t, err)
			defer conn.Close()
			require.Equal(t, "2", pragma(t, conn, "synchronous"))
			require.Equal(t, "wal", pragma(t, conn, "journal_mode"))
			require.Equal(t, "1", pragma(t, conn, "foreign_keys"))
			require.Equal(t, "5000", pragma(t, conn, "busy_timeout"))
			require.Equal(t, "1", pragma(t, conn, "query_only"))
			_, err = conn.ExecContext(ctx, "DELETE FROM instances")
			require.Error(t, err, "a read connection must not write")
		}
	})

	t.Run("Config", func(t *testing.T) {
		t.Parallel()
		cfg := testConfig()
		cfg.ReadConns, cfg.BusyTimeout = 2, 1500*time.Millisecond
		s, err := Open(t.Context(), filepath.Join(t.TempDir(), "ordo.db"), cfg)
		require.NoError(t, err)
		defer s.Close()
		require.Equal(t, 2, s.reader.Stats().MaxOpenConnections)
		require.Equal(t, 1, s.writer.Stats().MaxOpenConnections)
		var timeout int
		require.NoError(t, s.writer.QueryRowContext(t.Context(), "PRAGMA busy_timeout").Scan(&timeout))
		require.Equal(t, 1500, timeout)

		for _, bad := range []*Config{{ReadConns: -1}, {BusyTimeout: -time.Second}} {
			_, err := Open(t.Context(), filepath.Join(t.TempDir(), "ordo.db"), bad)
			require.ErrorIs(t, err, ordotype.ErrInvalid)
		}
	})

	t.Run("LockFileKeepsOneStorePerFile", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "ordo.db")
		s, err := Open(t.Context(), path, testConfig())
		require.NoError(t, err)

		_, err = Open(t.Context(), path, testConfig())
		require.ErrorContains(t, err, path)
		require.ErrorContains(t, err, "already open")

		// The same file by another name is the same lock.
		rel, err := filepath.Rel(mustGetwd(t), path)
		require.NoError(t, err)
		_, err = Open(t.Context(), rel, testConfig())
		require.ErrorContains(t, err, "already open")

		require.NoError(t, s.Close())
		s, err = Open(t.Context(), path, testConfig())
		require.NoError(t, err)
		require.NoError(t, s.Close())
	})

	t.Run("NewerSchemaIsRefused", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "ordo.db")
		s, err := Open(t.Context(), path, testConfig())
		require.NoError(t, err)
		_, err = s.writer.ExecContext(t.Context(), "INSERT INTO goose_db_version (version_id, is_applied) VALUES (999, 1)")
		require.NoError(t, err)
		require.NoError(t, s.Close())

		_, err = Open(t.Context(), path, testConfig())
		require.ErrorContains(t, err, "version 999")

		// The failed Open released the lock.
		lock, err := lockFile(path + ".lock")
		require.NoError(t, err)
		require.NoError(t, lock.Close())
	})

	t.Run("DataSurvivesReopen", func(t *testing.T) {
		t.Parallel()
		// A space and a '#' in the path: the path must be escaped in the DSN.
		path := filepath.Join(t.TempDir(), "my data #1", "ordo.db")
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
		ctx := t.Context()

		s, err := Open(ctx, path, testConfig())
		require.NoError(t, err)
		_, _, err = s.PutDefinition(ctx, &ordostore.PutDefinitionParams{Name: "order", Hash: "h1", Source: []byte(`{}`), Now: time.Now()})
		require.NoError(t, err)
		results, err := s.Apply(ctx, []*ordostore.Transition{{
			Create: &ordostore.Instance{ID: "inst-1", Workflow: "order", Version: 1, Status: ordotype.StatusRunning, Seq: 1, CreatedAt: time.Now()},
			Events: []*ordostore.Event{{Seq: 1, Type: "Started", CreatedAt: time.Now()}},
			Tasks:  []*ordostore.Task{{Kind: ordotype.TaskStep, Queue: "q", DueAt: time.Now()}},
		}})
		require.NoError(t, err)
		require.NoError(t, results[0].Err)
		require.NoError(t, s.Close())
		_, err = os.Stat(path)
		require.NoError(t, err)

		for range 2 {
			s, err = Open(ctx, path, testConfig())
			require.NoError(t, err)
			inst, err := s.GetInstance(ctx, "inst-1")
			require.NoError(t, err)
			require.Equal(t, int64(1), inst.Seq)
			def, err := s.GetDefinition(ctx, "order", 0)
			require.NoError(t, err)
			require.Equal(t, "h1", def.Hash)
			n, err := s.CountTasks(ctx, &ordostore.CountTasksParams{InstanceID: "inst-1"})
			require.NoError(t, err)
			require.Equal(t, 1, n)
			var version int64
			require.NoError(t, s.writer.QueryRowContext(ctx, "SELECT MAX(version_id) FROM goose_db_version").Scan(&version))
			require.Equal(t, int64(2), version)
			require.NoError(t, s.Close())
		}
	})
}

func TestTimesAreExactAndUTC(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()

	created := time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", -7*3600))
	results, err := s.Apply(ctx, []*ordostore.Transition{{
		Create: &ordostore.Instance{ID: "inst-1", Workflow: "order", Version: 1, Status: ordotype.StatusRunning, CreatedAt: created, UpdatedAt: created},
	}})
	require.NoError(t, err)
	require.NoError(t, results[0].Err)
	inst, err := s.GetInstance(ctx, "inst-1")
	require.NoError(t, err)
	require.Equal(t, created.UTC(), inst.CreatedAt)
	require.Equal(t, time.UTC, inst.CreatedAt.Location())
	require.True(t, inst.FinishedAt.IsZero())
}

func TestApplyHonoursContext(t *testing.T) {
	t.Parallel()
	s := openTest(t)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Apply(ctx, []*ordostore.Transition{{
		Create: &ordostore.Instance{ID: "inst-1", Workflow: "order", Version: 1, Status: ordotype.StatusRunning},
	}})
	require.ErrorIs(t, err, context.Canceled)
	_, err = s.GetInstance(t.Context(), "inst-1")
	require.ErrorIs(t, err, ordotype.ErrNotFound)

	// The writer is usable afterwards.
	results, err := s.Apply(t.Context(), []*ordostore.Transition{{
		Create: &ordostore.Instance{ID: "inst-1", Workflow: "order", Version: 1, Status: ordotype.StatusRunning},
	}})
	require.NoError(t, err)
	require.NoError(t, results[0].Err)
}

// TestQueryPlans checks that the task queue's statements use their index
// and stop early instead of sorting every candidate.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	s := openTest(t)

	for query, index := range map[string]string{
		sqlClaimCandidatesQueue: "tasks_kind_queue_due",
		sqlClaimCandidatesKind:  "tasks_kind_due",
		sqlNextDueQueue:         "tasks_kind_queue_due",
		sqlNextDueKind:          "tasks_kind_due",
		sqlInstanceIDByKey:      "instances_idempotency_key",
		sqlInstanceKey:          "instances_idempotency_key",
		sqlEvents:               "events_instance_seq",
		sqlInstancesByID:        "sqlite_autoindex_instances_1",
		sqlDueTasks:             "tasks_kind_queue_due",
		sqlDueTasksSame:         "tasks_kind_queue_due (kind=? AND queue=? AND due_at=? AND rowid>?)",
		sqlDueTasksNext:         "tasks_kind_queue_due",
	} {
		rows, err := s.writer.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+query, make([]any, strings.Count(query, "?"))...)
		require.NoError(t, err)
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
			plan = append(plan, detail)
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
		joined := strings.Join(plan, "; ")
		require.Contains(t, joined, index, query)
		require.NotContains(t, joined, "TEMP B-TREE", query)
	}
}

func mustGetwd(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	require.NoError(t, err)
	return wd
}
