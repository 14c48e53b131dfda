package ordopostgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordostore/ordostoretest"
	"github.com/ordoflow/ordo/ordotype"
)

// urlEnv names the environment variable that gives the tests their
// server. CI sets it to postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const urlEnv = "ORDO_TEST_POSTGRES_URL"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testURL returns the server of the tests, or skips the test.
func testURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(urlEnv)
	if u == "" {
		t.Skip(urlEnv + " is not set; skipping PostgreSQL tests")
	}
	return u
}

// testConfig returns the configuration of a test store in schema: the
// defaults, silent.
func testConfig(schema string) *Config {
	return &Config{Schema: schema, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// newSchema returns the name of a new, unique schema, dropped at the end of
// the test with everything in it.
func newSchema(t testing.TB) string {
	t.Helper()
	u := testURL(t)
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "ordotest_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := context.WithoutCancel(context.Background())
		conn, err := pgx.Connect(ctx, u)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
		require.NoError(t, err)
	})
	return schema
}

// openSchema opens a store on schema and closes it at the end of the test
// (before the schema is dropped).
func openSchema(t testing.TB, schema string) *Store {
	t.Helper()
	s, err := Open(context.Background(), testURL(t), testConfig(schema))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// openTest opens a store on a new schema.
func openTest(t testing.TB) *Store {
	t.Helper()
	return openSchema(t, newSchema(t))
}

// withOptions returns the URL of the test server with the server options
// opts ("-c name=value ..."), which the server applies to each session.
func withOptions(t testing.TB, opts string) string {
	t.Helper()
	u, err := url.Parse(testURL(t))
	require.NoError(t, err)
	if u.RawQuery != "" {
		u.RawQuery += "&"
	}
	u.RawQuery += "options=" + strings.ReplaceAll(url.QueryEscape(opts), "+", "%20")
	return u.String()
}

// exec runs sql on its own connection to the test server.
func exec(t testing.TB, schema, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(testURL(t))
	require.NoError(t, err)
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	require.NoError(t, err)
}

func TestConformance(t *testing.T) {
	t.Parallel()
	testURL(t)
	ordostoretest.Exercise(t.Context(), t, func(t *testing.T) ordostore.Store { return openTest(t) })
}

func TestOpen(t *testing.T) {
	t.Parallel()

	t.Run("TablesLiveInTheSchema", func(t *testing.T) {
		t.Parallel()
		s := openTest(t)

		var tables []string
		rows, err := s.pool.Query(t.Context(), `SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename`, s.schema)
		require.NoError(t, err)
		tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Equal(t, []string{"definitions", "events", "goose_db_version", "instances", "messages", "slots", "tasks"}, tables)
	})

	t.Run("Config", func(t *testing.T) {
		t.Parallel()
		schema := newSchema(t)
		cfg := testConfig(schema)
		cfg.MaxConns = 3
		s, err := Open(t.Context(), testURL(t), cfg)
		require.NoError(t, err)
		defer s.Close()
		require.Equal(t, int32(3), s.pool.Config().MaxConns)
		require.Equal(t, "postgres", s.DatabaseName())
		require.False(t, s.Exclusive())

		_, err = Open(t.Context(), testURL(t), &Config{MaxConns: -1})
		require.ErrorIs(t, err, ordotype.ErrInvalid)
		_, err = Open(t.Context(), "postgres://[::1", testConfig(schema))
		require.ErrorIs(t, err, ordotype.ErrInvalid)
	})

	t.Run("SynchronousCommitStaysOn", func(t *testing.T) {
		t.Parallel()
		// The URL asks for synchronous_commit=off; the store turns it back on.
		s, err := Open(t.Context(), withOptions(t, "-c synchronous_commit=off"), testConfig(newSchema(t)))
		require.NoError(t, err)
		defer s.Close()

		// Hold every connection at once, so that each is a different one.
		for range 3 {
			conn, err := s.pool.Acquire(t.Context())
			require.NoError(t, err)
			defer conn.Release()
			var level string
			require.NoError(t, conn.QueryRow(t.Context(), `SHOW synchronous_commit`).Scan(&level))
			require.Equal(t, "on", level)
		}
	})

	t.Run("MigrationsAreIdempotent", func(t *testing.T) {
		t.Parallel()
		schema := newSchema(t)
		for range 3 {
			require.NoError(t, Migrate(t.Context(), testURL(t), testConfig(schema)))
		}
		s := openSchema(t, schema)
		var versions []int64
		rows, err := s.pool.Query(t.Context(), `SELECT version_id FROM goose_db_version ORDER BY id`)
		require.NoError(t, err)
		versions, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		require.NoError(t, err)
		require.Equal(t, []int64{0, 1, 2}, versions, "each migration is recorded once")
	})

	t.Run("ConcurrentOpensMigrateOnce", func(t *testing.T) {
		t.Parallel()
		schema := newSchema(t)

		const opens = 4
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			stores []*Store
			errs   []error
		)
		for range opens {
			wg.Go(func() {
				s, err := Open(t.Context(), testURL(t), testConfig(schema))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				stores = append(stores, s)
			})
		}
		wg.Wait()
		for _, s := range stores {
			defer s.Close()
		}
		require.NoError(t, errors.Join(errs...))
		require.Len(t, stores, opens)

		var n int
		require.NoError(t, stores[0].pool.QueryRow(t.Context(), `SELECT count(*) FROM goose_db_version WHERE version_id = 1`).Scan(&n))
		require.Equal(t, 1, n)
		// Every store works on the same tables.
		for i, s := range stores {
			results, err := s.Apply(t.Context(), []*ordostore.Transition{{
				Create: &ordostore.Instance{ID: fmt.Sprintf("inst-%d", i), Workflow: "order", Version: 1, Status: ordotype.StatusRunning},
			}})
			require.NoError(t, err)
			require.NoError(t, results[0].Err)
		}
		insts, err := stores[0].ListInstances(t.Context(), &ordostore.ListInstancesParams{})
		require.NoError(t, err)
		require.Len(t, insts, opens)
	})

	t.Run("DisableMigrate", func(t *testing.T) {
		t.Parallel()
		schema := newSchema(t)
		cfg := testConfig(schema)
		cfg.DisableMigrate = true

		_, err := Open(t.Context(), testURL(t), cfg)
		require.ErrorContains(t, err, "migrations are disabled")

		require.NoError(t, Migrate(t.Context(), testURL(t), testConfig(schema)))
		s, err := Open(t.Context(), testURL(t), cfg)
		require.NoError(t, err)
		require.NoError(t, s.Close())
	})

	t.Run("NewerSchemaIsRefused", func(t *testing.T) {
		t.Parallel()
		schema := newSchema(t)
		require.NoError(t, Migrate(t.Context(), testURL(t), testConfig(schema)))
		exec(t, schema, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (999, true)`)

		_, err := Open(t.Context(), testURL(t), testConfig(schema))
		require.ErrorContains(t, err, "version 999")
		cfg := testConfig(schema)
		cfg.DisableMigrate = true
		_, err = Open(t.Context(), testURL(t), cfg)
		require.ErrorContains(t, err, "version 999")
	})

	t.Run("SchemaNeedsQuoting", func(t *testing.T) {
		t.Parallel()
		schema := newSchema(t) + ` "x"`
		t.Cleanup(func() { exec(t, "public", `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`) })
		s := openSchema(t, schema)
		_, _, err := s.PutDefinition(t.Context(), &ordostore.PutDefinitionParams{Name: "order", Hash: "h1", Source: []byte(`{}`), Now: time.Now()})
		require.NoError(t, err)
	})

	t.Run("DataSurvivesReopen", func(t *testing.T) {
		t.Parallel()
		schema := newSchema(t)
		ctx := t.Context()

		st, err := Open(ctx, testURL(t), testConfig(schema))
		require.NoError(t, err)
		_, _, err = st.PutDefinition(ctx, &ordostore.PutDefinitionParams{Name: "order", Hash: "h1", Source: []byte(`{}`), Now: time.Now()})
		require.NoError(t, err)
		results, err := st.Apply(ctx, []*ordostore.Transition{{
			Create: &ordostore.Instance{ID: "inst-1", Workflow: "order", Version: 1, Status: ordotype.StatusRunning, Seq: 1, CreatedAt: time.Now()},
			Events: []*ordostore.Event{{Seq: 1, Type: "Started", CreatedAt: time.Now()}},
			Tasks:  []*ordostore.Task{{Kind: ordotype.TaskStep, Queue: "q", DueAt: time.Now()}},
		}})
		require.NoError(t, err)
		require.NoError(t, results[0].Err)
		require.NoError(t, st.Close())

		for range 2 {
			st, err = Open(ctx, testURL(t), testConfig(schema))
			require.NoError(t, err)
			inst, err := st.GetInstance(ctx, "inst-1")
			require.NoError(t, err)
			require.Equal(t, int64(1), inst.Seq)
			def, err := st.GetDefinition(ctx, "order", 0)
			require.NoError(t, err)
			require.Equal(t, "h1", def.Hash)
			n, err := st.CountTasks(ctx, &ordostore.CountTasksParams{InstanceID: "inst-1"})
			require.NoError(t, err)
			require.Equal(t, 1, n)
			require.Len(t, listEvents(t, st, "inst-1"), 1)
			require.NoError(t, st.Close())
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

	// The pool is usable afterwards.
	results, err := s.Apply(t.Context(), []*ordostore.Transition{{
		Create: &ordostore.Instance{ID: "inst-1", Workflow: "order", Version: 1, Status: ordotype.StatusRunning},
	}})
	require.NoError(t, err)
	require.NoError(t, results[0].Err)

	// A batch waiting for a row that another transaction locked gives up
	// when ctx ends, and writes nothing.
	blocker, err := s.pool.Begin(t.Context())
	require.NoError(t, err)
	_, err = blocker.Exec(t.Context(), `SELECT 1 FROM instances WHERE id = 'inst-1' FOR UPDATE`)
	require.NoError(t, err)
	ctx, cancel = context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	advance := []*ordostore.Transition{{
		InstanceID: "inst-1", ExpectedSeq: 0,
		Events: []*ordostore.Event{{Seq: 1, Type: "Advanced"}},
	}}
	_, err = s.Apply(ctx, advance)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, blocker.Rollback(t.Context()))
	require.Empty(t, listEvents(t, s, "inst-1"))

	results, err = s.Apply(t.Context(), advance)
	require.NoError(t, err)
	require.NoError(t, results[0].Err)
	require.Len(t, listEvents(t, s, "inst-1"), 1)
}

// TestApplyBatchOrder checks batches whose transitions depend on each
// other's outcome: they are decided in batch order, as if applied one by
// one.
func TestApplyBatchOrder(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	create := func(id string, tasks ...*ordostore.Task) *ordostore.Transition {
		return &ordostore.Transition{
			Create: &ordostore.Instance{ID: id, Workflow: "order", Version: 1, Status: ordotype.StatusRunning, Seq: 1},
			Events: []*ordostore.Event{{Seq: 1, Type: "Started"}},
			Tasks:  tasks,
		}
	}
	advance := func(id string, seq int64) *ordostore.Transition {
		return &ordostore.Transition{
			InstanceID: id, ExpectedSeq: seq,
			Events: []*ordostore.Event{{Seq: seq + 1, Type: "Advanced"}},
			Update: &ordostore.InstanceUpdate{Status: ordotype.StatusWaiting, Seq: seq + 1, State: []byte(fmt.Sprintf(`{"seq":%d}`, seq+1))},
		}
	}
	task := func(queue string) *ordostore.Task {
		return &ordostore.Task{Kind: ordotype.TaskStep, Queue: queue}
	}
	claimOne := func(t *testing.T, s *Store) *ordostore.Task {
		t.Helper()
		tasks, err := s.ClaimTasks(ctx, &ordostore.ClaimTasksParams{
			Owner: "worker", Kinds: []ordotype.TaskKind{ordotype.TaskStep}, Now: time.Unix(1, 0), LeaseUntil: time.Unix(60, 0), Limit: 1,
		})
		require.NoError(t, err)
		require.Len(t, tasks, 1)
		return tasks[0]
	}

	t.Run("AdvanceBeforeAndAfterCreate", func(t *testing.T) {
		t.Parallel()
		s := openTest(t)

		results := applyAll(t, s, advance("inst-1", 1), create("inst-1"), advance("inst-1", 1), advance("inst-1", 2))
		require.ErrorIs(t, results[0].Err, ordotype.ErrNotFound)
		require.NoError(t, results[1].Err)
		require.NoError(t, results[2].Err)
		require.NoError(t, results[3].Err)
		inst, err := s.GetInstance(ctx, "inst-1")
		require.NoError(t, err)
		require.Equal(t, int64(3), inst.Seq)
		require.Equal(t, ordotype.StatusWaiting, inst.Status)
		require.Equal(t, `{"seq":3}`, string(inst.State))
		require.Len(t, listEvents(t, s, "inst-1"), 3)
	})

	t.Run("CreateThatCompletesATask", func(t *testing.T) {
		t.Parallel()
		s := openTest(t)
		applyAll(t, s, create("inst-0", task("q")))
		done := claimOne(t, s)
		ref := &ordostore.TaskRef{ID: done.ID, Claim: done.Claim}

		// The create completes the task, so the advance after it is a
		// duplicate; the create after that waits for the first one's
		// insert and is inserted too.
		first, second := create("inst-1", task("a")), advance("inst-0", 1)
		first.Complete, second.Complete = ref, ref
		results := applyAll(t, s, first, second, create("inst-2", task("b")))
		require.NoError(t, results[0].Err)
		require.ErrorIs(t, results[1].Err, ordotype.ErrDuplicate)
		require.NoError(t, results[2].Err)
		require.Len(t, results[0].TaskIDs, 1)
		require.Len(t, results[2].TaskIDs, 1)
		require.Less(t, results[0].TaskIDs[0], results[2].TaskIDs[0])
		n, err := s.CountTasks(ctx, &ordostore.CountTasksParams{})
		require.NoError(t, err)
		require.Equal(t, 2, n)
	})

	t.Run("FailedCreateDoesNotCompleteItsTask", func(t *testing.T) {
		t.Parallel()
		s := openTest(t)
		applyAll(t, s, create("inst-0", task("q")))
		done := claimOne(t, s)
		ref := &ordostore.TaskRef{ID: done.ID, Claim: done.Claim}

		// inst-0 exists: the create fails, and the task is still there for
		// the advance after it.
		first, second := create("inst-0"), advance("inst-0", 1)
		first.Complete, second.Complete = ref, ref
		results := applyAll(t, s, first, second)
		require.ErrorIs(t, results[0].Err, ordotype.ErrAlreadyExists)
		require.Equal(t, "inst-0", results[0].ExistingID)
		require.NoError(t, results[1].Err)
		n, err := s.CountTasks(ctx, &ordostore.CountTasksParams{})
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("KeyTakenByALaterCreateOfTheBatch", func(t *testing.T) {
		t.Parallel()
		s := openTest(t)
		applyAll(t, s, create("inst-0", task("q")))
		done := claimOne(t, s)

		// The first create waits for its completion to be decided; the
		// second, with the same key, must not be inserted before it.
		first, second := create("inst-1"), create("inst-2")
		first.Create.IdempotencyKey, second.Create.IdempotencyKey = "k", "k"
		first.Complete = &ordostore.TaskRef{ID: done.ID, Claim: done.Claim}
		results := applyAll(t, s, first, second)
		require.NoError(t, results[0].Err)
		require.ErrorIs(t, results[1].Err, ordotype.ErrAlreadyExists)
		require.Equal(t, "inst-1", results[1].ExistingID)
	})

	t.Run("TaskOfAnotherInstance", func(t *testing.T) {
		t.Parallel()
		s := openTest(t)
		applyAll(t, s, create("parent"))
		child := task("q")
		child.InstanceID = "parent"
		results := applyAll(t, s, create("child", child))
		require.NoError(t, results[0].Err)
		n, err := s.CountTasks(ctx, &ordostore.CountTasksParams{InstanceID: "parent"})
		require.NoError(t, err)
		require.Equal(t, 1, n)

		// A task of an instance that does not exist fails the batch.
		orphan := task("q")
		orphan.InstanceID = "nope"
		_, err = s.Apply(ctx, []*ordostore.Transition{create("other", orphan)})
		require.ErrorIs(t, err, ordotype.ErrInvalid)
		_, err = s.GetInstance(ctx, "other")
		require.ErrorIs(t, err, ordotype.ErrNotFound)
	})

	t.Run("ManyTaskIDs", func(t *testing.T) {
		t.Parallel()
		s := openTest(t)

		var batch []*ordostore.Transition
		for i := range 100 {
			var tasks []*ordostore.Task
			for k := range i % 4 {
				tasks = append(tasks, task(fmt.Sprintf("%03d-%d", i, k)))
			}
			batch = append(batch, create(fmt.Sprintf("inst-%03d", i), tasks...))
		}
		results := applyAll(t, s, batch...)
		tasks, err := s.ClaimTasks(ctx, &ordostore.ClaimTasksParams{
			Owner: "worker", Kinds: []ordotype.TaskKind{ordotype.TaskStep}, Now: time.Unix(1, 0), LeaseUntil: time.Unix(60, 0), Limit: 1000,
		})
		require.NoError(t, err)
		queueOf := make(map[int64]string)
		for _, task := range tasks {
			queueOf[task.ID] = task.Queue
		}
		total := 0
		for i, res := range results {
			require.NoError(t, res.Err)
			require.Len(t, res.TaskIDs, i%4)
			for k, id := range res.TaskIDs {
				require.Equal(t, fmt.Sprintf("%03d-%d", i, k), queueOf[id])
				total++
			}
		}
		require.Len(t, tasks, total)
	})
}

// TestTwoNodesShareTasks runs two stores on one schema, as two engine
// processes would, claiming from the same tasks with several goroutines
// each and through each form of the claim statement: no task is ever
// claimed twice in a round, and every task is claimed once.
func TestTwoNodesShareTasks(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	nodes := []*Store{openSchema(t, schema), openSchema(t, schema)}
	ctx := t.Context()

	const (
		tasks  = 600
		rounds = 10
	)
	queues := []string{"q0", "q1", "q2"}
	many := append([]string{}, queues...)
	for i := range 20 {
		many = append(many, fmt.Sprintf("other-%02d", i))
	}
	tr := &ordostore.Transition{Create: &ordostore.Instance{ID: "inst-1", Workflow: "order", Version: 1, Status: ordotype.StatusRunning}}
	for i := range tasks {
		tr.Tasks = append(tr.Tasks, &ordostore.Task{
			Kind: ordotype.TaskStep, Queue: queues[i%len(queues)], DueAt: time.Unix(0, int64(i%50+1)*int64(time.Microsecond)),
		})
	}
	applyAll(t, nodes[0], tr)

	filters := [][]string{nil, queues, many} // any queue, a few queues, more than maxPairs
	now := time.Unix(1, 0)
	for round := 1; round <= rounds; round++ {
		var (
			mu      sync.Mutex
			claimed = make(map[int64]string)
			errs    []error
			wg      sync.WaitGroup
		)
		for n, node := range nodes {
			for g, filter := range filters {
				owner := fmt.Sprintf("node-%d-%d", n, g)
				wg.Go(func() {
					for {
						got, err := node.ClaimTasks(ctx, &ordostore.ClaimTasksParams{
							Owner: owner, Kinds: []ordotype.TaskKind{ordotype.TaskStep}, Queues: filter,
							Now: now, LeaseUntil: now.Add(time.Hour), Limit: 7,
						})
						mu.Lock()
						if err != nil {
							errs = append(errs, err)
						}
						for _, task := range got {
							if other, ok := claimed[task.ID]; ok {
								errs = append(errs, fmt.Errorf("round %d: task %d claimed by %s and %s", round, task.ID, other, owner))
							}
							claimed[task.ID] = owner
							if task.Claim != round {
								errs = append(errs, fmt.Errorf("round %d: task %d has claim %d", round, task.ID, task.Claim))
							}
						}
						mu.Unlock()
						if err != nil || len(got) == 0 {
							return
						}
					}
				})
			}
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		require.Len(t, claimed, tasks, "round %d", round)

		n, err := nodes[round%2].ReleaseLeases(ctx, "")
		require.NoError(t, err)
		require.Equal(t, tasks, n)
	}
}

// TestTwoNodesCreateTheSameKeys has two stores create instances with the
// same idempotency keys at once, in opposite orders: their transactions
// deadlock, PostgreSQL aborts one, and Apply runs it again. Every key ends
// up with exactly one instance.
func TestTwoNodesCreateTheSameKeys(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	// Detect deadlocks after 20ms rather than 1s.
	u := withOptions(t, "-c deadlock_timeout=20ms")
	retries := &countingHandler{msg: "retrying a batch"}
	cfg := testConfig(schema)
	cfg.Logger = slog.New(retries)
	var nodes []*Store
	for range 2 {
		s, err := Open(t.Context(), u, cfg)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		nodes = append(nodes, s)
	}

	const (
		rounds = 20
		keys   = 32
	)
	for round := range rounds {
		var (
			wg      sync.WaitGroup
			results = make([][]ordostore.TransitionResult, len(nodes))
			errs    = make([]error, len(nodes))
		)
		for n, node := range nodes {
			var batch []*ordostore.Transition
			for k := range keys {
				if n == 1 {
					k = keys - 1 - k
				}
				batch = append(batch, &ordostore.Transition{Create: &ordostore.Instance{
					ID: fmt.Sprintf("inst-%02d-%d-%d", round, k, n), Workflow: "order", Version: 1, Status: ordotype.StatusRunning,
					IdempotencyKey: fmt.Sprintf("key-%02d-%d", round, k),
				}})
			}
			wg.Go(func() { results[n], errs[n] = node.Apply(t.Context(), batch) })
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))

		winners := make(map[string]string)
		for _, res := range results {
			for _, r := range res {
				if r.Err == nil {
					continue
				}
				require.ErrorIs(t, r.Err, ordotype.ErrAlreadyExists)
			}
		}
		for k := range keys {
			key := fmt.Sprintf("key-%02d-%d", round, k)
			inst, err := nodes[0].GetInstanceByKey(t.Context(), "order", key)
			require.NoError(t, err)
			winners[key] = inst.ID
		}
		for n, res := range results {
			for i, r := range res {
				k := i
				if n == 1 {
					k = keys - 1 - i
				}
				winner := winners[fmt.Sprintf("key-%02d-%d", round, k)]
				if r.Err == nil {
					require.Equal(t, fmt.Sprintf("inst-%02d-%d-%d", round, k, n), winner)
				} else {
					require.Equal(t, winner, r.ExistingID)
				}
			}
		}
	}
	t.Logf("%d batches retried after a deadlock", retries.count.Load())
}

// countingHandler is a slog.Handler that counts the records with message
// msg.
type countingHandler struct {
	msg   string
	count atomic.Int64
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.count.Add(1)
	}
	return nil
}

func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h *countingHandler) WithGroup(string) slog.Handler { return h }

// TestQueryPlans checks that the task queue's lookups are ordered index
// scans that stop at their LIMIT instead of sorting every candidate.
func TestQueryPlans(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	ctx := t.Context()

	// Enough rows for the planner to prefer the indexes.
	exec(t, s.schema, `INSERT INTO instances (id, workflow, version, status, seq, created_at, updated_at) VALUES ('inst-1', 'order', 1, 'running', 0, 0, 0)`)
	exec(t, s.schema, `INSERT INTO tasks (instance_id, kind, queue, step_id, attempt, due_at, created_at)
		SELECT 'inst-1', (ARRAY['step', 'effect', 'timer'])[n % 3 + 1], 'q' || (n % 10), '', 1, n, 0 FROM generate_series(1, 30000) AS n`)
	exec(t, s.schema, `ANALYZE tasks`)

	kinds, queues := []string{"step", "effect"}, []string{"q1", "q2", "q3"}
	// All the queues that have tasks, and more: more than maxPairs pairs.
	many := []string{"q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9", "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8"}
	for _, c := range []struct {
		sql   string
		args  []any
		index string
	}{
		{sqlClaimPairs, []any{"o", 2, kinds, queues, 1000, 16}, "tasks_kind_queue_due"},
		{sqlClaimKinds, []any{"o", 2, kinds, 1000, 16}, "tasks_kind_due"},
		{sqlClaimManyPairs, []any{"o", 2, kinds, many, 1000, 16}, "tasks_kind_due"},
		{sqlNextDuePairs, []any{kinds, queues}, "tasks_kind_queue_due"},
		{sqlNextDueManyPairs, []any{kinds, many}, "tasks_kind_due"},
		{sqlNextDueKinds, []any{kinds}, "tasks_kind_due"},
		{sqlInstanceKey, []any{"order", "k"}, "instances_idempotency_key"},
		{sqlEvents, []any{"inst-1", 0, nil}, "events_pkey"},
	} {
		rows, err := s.pool.Query(ctx, "EXPLAIN "+c.sql, c.args...)
		require.NoError(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		var plan string
		for _, line := range lines {
			plan += line + "\n"
		}
		require.Contains(t, plan, "Index Scan using "+c.index, c.sql)
		// Only the merge of a few candidates per pair may sort.
		require.NotContains(t, plan, "Sort Key: tasks.due_at", c.sql)
		require.NotContains(t, plan, "Seq Scan", c.sql)
	}
}

// applyAll applies batch, which must succeed as a whole.
func applyAll(t *testing.T, s *Store, batch ...*ordostore.Transition) []ordostore.TransitionResult {
	t.Helper()
	results, err := s.Apply(t.Context(), batch)
	require.NoError(t, err)
	require.Len(t, results, len(batch))
	return results
}

// listEvents returns every event of instance id.
func listEvents(t *testing.T, s *Store, id string) []*ordostore.Event {
	t.Helper()
	events, err := s.ListEvents(t.Context(), &ordostore.ListEventsParams{InstanceID: id})
	require.NoError(t, err)
	return events
}

// TestEnginesShareWork runs two engines on one schema, as two processes
// would, and starts instances on both: every instance completes, and no
// step runs twice.
func TestEnginesShareWork(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	ctx := t.Context()

	var (
		mu   sync.Mutex
		runs = make(map[string]int) // instance/step → runs
	)
	step := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		mu.Lock()
		runs[req.InstanceID+"/"+req.Step]++
		mu.Unlock()
		return ordo.Result{Output: req.Step}, nil
	}
	def := ordo.NewWorkflow("order").
		Step(ordo.Task("charge", "step")).
		Step(ordo.Task("reserve", "step").After("charge")).
		Step(ordo.Task("label", "step").After("charge")).
		Step(ordo.Task("ship", "step").After("reserve", "label")).
		MustBuild()
	var engines []*ordo.Engine
	for n := range 2 {
		eng, err := ordo.New(ctx, openSchema(t, schema), &ordo.Config{
			Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
			NodeID:       fmt.Sprintf("node-%d", n),
			PollInterval: 20 * time.Millisecond,
		})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, eng.Close(context.WithoutCancel(ctx))) })
		_, err = eng.Register(ctx, def, ordo.Handlers{"step": step})
		require.NoError(t, err)
		engines = append(engines, eng)
	}

	const instances = 40
	var ids []string
	for i := range instances {
		id, err := engines[i%2].Start(ctx, "order", map[string]int{"n": i}, ordo.IdempotencyKey(fmt.Sprint(i)))
		require.NoError(t, err)
		ids = append(ids, id)
	}
	// A second start with a key already used, on the other node, is the
	// same instance.
	again, err := engines[1].Start(ctx, "order", map[string]int{"n": 0}, ordo.IdempotencyKey("0"))
	require.NoError(t, err)
	require.Equal(t, ids[0], again)

	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for i, id := range ids {
		inst, err := engines[(i+1)%2].Wait(waitCtx, id)
		require.NoError(t, err)
		require.Equal(t, ordo.StatusCompleted, inst.Status, "instance %s", id)
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, runs, instances*4)
	for key, n := range runs {
		require.Equal(t, 1, n, "step %s ran %d times", key, n)
	}
}
