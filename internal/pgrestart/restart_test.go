package pgrestart

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordopostgres"
	"github.com/ordoflow/ordo/ordostore"
)

// pgctl runs pg_ctlcluster on the local cluster with action.
func pgctl(action string) ([]byte, error) {
	return exec.Command("bash", "-c", `pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main `+action).CombinedOutput()
}

// pgAnswers reports whether PostgreSQL accepts connections at url.
func pgAnswers(url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx) == nil
}

// TestPostgresRestart restarts PostgreSQL while two engine nodes run 300
// instances: the nodes reconnect, every instance whose start was
// acknowledged completes, each step completion is journaled exactly once,
// and no task is left behind.
func TestPostgresRestart(t *testing.T) {
	url := os.Getenv("ORDO_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("ORDO_TEST_POSTGRES_URL is not set; skipping PostgreSQL tests")
	}
	if os.Getenv("ORDO_TEST_PG_RESTART") != "1" {
		t.Skip("ORDO_TEST_PG_RESTART=1 is not set: this test restarts the local PostgreSQL (pg_ctlcluster), which fails any other test using it at the time")
	}
	if _, err := exec.LookPath("pg_ctlcluster"); err != nil {
		t.Skip("pg_ctlcluster is not installed")
	}
	// Whatever happens, PostgreSQL is left running.
	t.Cleanup(func() {
		for range 30 {
			if pgAnswers(url) {
				return
			}
			if out, err := pgctl("start"); err != nil {
				t.Logf("pg_ctlcluster start: %v: %s", err, out)
			}
			time.Sleep(time.Second)
		}
		t.Error("PostgreSQL does not answer after the test")
	})

	ctx := t.Context()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "ordorestart_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), url)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		_, err = conn.Exec(context.Background(), `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`)
		require.NoError(t, err)
	})

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	def := ordo.NewWorkflow("restart").
		Step(ordo.Task("pay", "work")).
		Step(ordo.Task("pick", "work").After("pay")).
		Step(ordo.Task("ship", "work").After("pay")).
		Step(ordo.Task("notify", "work").After("pick", "ship")).
		MustBuild()
	work := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		time.Sleep(2 * time.Millisecond)
		return ordo.Result{Output: req.Step}, nil
	}
	var nodes []*ordo.Engine
	var store ordostore.Store
	for n := range 2 {
		s, err := ordopostgres.Open(ctx, url, &ordopostgres.Config{Schema: schema, Logger: quiet})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		eng, err := ordo.New(ctx, s, &ordo.Config{
			Logger: quiet, NodeID: fmt.Sprintf("node-%d", n),
			// Short leases: a commit that went through while its answer was
			// lost leaves its new tasks leased to a node that does not know;
			// they are claimed again once the lease ends.
			LeaseDuration: 3 * time.Second,
			PollInterval:  100 * time.Millisecond,
		})
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, eng.Close(context.WithoutCancel(ctx))) })
		_, err = eng.Register(ctx, def, ordo.Handlers{"work": work})
		require.NoError(t, err)
		nodes = append(nodes, eng)
		store = s
	}

	const instances = 300
	runCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var (
		mu        sync.Mutex
		ids       = map[string]string{} // key → acknowledged instance
		started   atomic.Int64
		startErrs atomic.Int64
		restarted = make(chan struct{})
	)
	// The restart, once a third of the instances have started.
	go func() {
		defer close(restarted)
		for started.Load() < instances/3 && runCtx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		out, err := pgctl("restart")
		if err != nil {
			t.Errorf("pg_ctlcluster restart: %v: %s", err, out)
		}
	}()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			eng := nodes[w%2]
			for i := w; i < instances; i += 4 {
				key := fmt.Sprint(i)
				// A start that fails is not acknowledged; it is tried again
				// with the same key, which is the same instance if the
				// failed try was written after all.
				for {
					id, err := eng.Start(runCtx, "restart", map[string]int{"i": i}, ordo.IdempotencyKey(key))
					if err == nil {
						mu.Lock()
						ids[key] = id
						mu.Unlock()
						started.Add(1)
						break
					}
					if runCtx.Err() != nil {
						return
					}
					startErrs.Add(1)
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	<-restarted
	require.NoError(t, runCtx.Err())
	require.Len(t, ids, instances)
	t.Logf("%d starts failed while PostgreSQL restarted and were tried again", startErrs.Load())
	require.Positive(t, startErrs.Load(), "the restart landed after every start: it proved nothing")

	// Every acknowledged instance completes.
	for key, id := range ids {
		for {
			inst, err := store.GetInstance(runCtx, id)
			if err == nil && inst.Status == ordo.StatusCompleted {
				break
			}
			if runCtx.Err() != nil {
				status := "unknown"
				if inst != nil {
					status = string(inst.Status)
				}
				t.Fatalf("instance %s (key %s) is %s: %v", id, key, status, errors.Join(err, runCtx.Err()))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, id := range ids {
		events, err := store.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: id})
		require.NoError(t, err)
		completed := map[string]int{}
		for i, ev := range events {
			require.Equal(t, int64(i+1), ev.Seq, "instance %s: gap in the journal", id)
			if ev.Type == "step.completed" {
				completed[ev.StepID]++
			}
		}
		require.Equal(t, map[string]int{"pay": 1, "pick": 1, "ship": 1, "notify": 1}, completed, "instance %s", id)
	}
	left, err := store.CountTasks(ctx, &ordostore.CountTasksParams{})
	require.NoError(t, err)
	require.Zero(t, left, "tasks left behind")
}
