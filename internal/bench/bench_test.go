package bench

import (
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotest"
)

func TestRun_BothWorkloads(t *testing.T) {
	t.Parallel()
	for _, w := range []string{WorkloadLinear3, WorkloadOrder} {
		t.Run(w, func(t *testing.T) {
			t.Parallel()
			res, err := Run(t.Context(), Options{Workload: w, Instances: 200, Concurrency: 20})
			require.NoError(t, err)
			require.Equal(t, 200, res.Instances)
			require.Positive(t, res.PerSecond)
			require.Positive(t, res.P99Ms)
			require.GreaterOrEqual(t, res.P99Ms, res.P50Ms)
			require.Positive(t, res.Commits)
			require.Equal(t, "sqlite", res.Store)
		})
	}
}

func TestRun_RejectsBadOptions(t *testing.T) {
	t.Parallel()
	_, err := Run(t.Context(), Options{Workload: "nope", Instances: 1, Concurrency: 1})
	require.ErrorContains(t, err, `unknown workload "nope"`)
	_, err = Run(t.Context(), Options{Workload: WorkloadLinear3, Instances: 0, Concurrency: 1})
	require.Error(t, err)
	_, err = Run(t.Context(), Options{Workload: WorkloadLinear3, Instances: 1, Concurrency: 1, DB: "bench_test.go"})
	require.ErrorContains(t, err, "exists")
}

// BenchmarkEngine_Linear3 runs b.N linear3 instances end to end on SQLite
// with 50 concurrent starters.
func BenchmarkEngine_Linear3(b *testing.B) { benchWorkload(b, WorkloadLinear3, 50) }

// BenchmarkEngine_Order runs b.N order instances end to end on SQLite with
// 100 concurrent starters.
func BenchmarkEngine_Order(b *testing.B) { benchWorkload(b, WorkloadOrder, 100) }

func benchWorkload(b *testing.B, workload string, concurrency int) {
	res, err := Run(b.Context(), Options{Workload: workload, Instances: max(b.N, concurrency), Concurrency: concurrency})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.PerSecond, "instances/s")
	b.ReportMetric(res.P99Ms, "p99-ms")
}

func TestRun_PostgreSQL(t *testing.T) {
	t.Parallel()
	url := os.Getenv("ORDO_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("ORDO_TEST_POSTGRES_URL is not set; skipping PostgreSQL tests")
	}
	res, err := Run(t.Context(), Options{Workload: WorkloadOrder, Instances: 100, Concurrency: 10, DB: url})
	require.NoError(t, err)
	require.Equal(t, "postgres", res.Store)
	require.Equal(t, 100, res.Instances)
	require.NotContains(t, res.DB, "password")

	conn, err := pgx.Connect(t.Context(), url)
	require.NoError(t, err)
	defer conn.Close(t.Context())
	schema := res.DB[strings.LastIndex(res.DB, " ")+1:]
	var n int
	require.NoError(t, conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n))
	require.Zero(t, n, "the run's schema is dropped")
}

func TestRun_Timers(t *testing.T) {
	t.Parallel()
	res, err := Run(t.Context(), Options{Workload: WorkloadTimers, Instances: 300, Concurrency: 20})
	require.NoError(t, err, "every timer fired, none before T, each instance completed")
	require.Equal(t, WorkloadTimers, res.Workload)
	require.Equal(t, 300, res.Instances)
	require.Positive(t, res.CreateSeconds)
	require.Positive(t, res.PerSecond)
	require.GreaterOrEqual(t, res.MaxMs, res.P99Ms)
	require.GreaterOrEqual(t, res.P99Ms, res.P50Ms)
	require.GreaterOrEqual(t, res.Transitions, int64(300), "the second engine fired the timers")
	var out strings.Builder
	res.Print(&out)
	require.Contains(t, out.String(), "lateness")
	require.Contains(t, out.String(), "timers/s")
}

// BenchmarkFireTimers measures the claim and fire path of timers: b.N
// instances wait on a one-hour timer (started before the clock runs), then
// a fake clock moves an hour on and the engine fires them all.
func BenchmarkFireTimers(b *testing.B) {
	tt := ordotest.New(b, &ordotest.Options{Config: &ordo.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}})
	def := ordo.NewWorkflow("bench-fire").Step(ordo.Timer("wait", time.Hour)).MustBuild()
	if _, err := tt.Engine.Register(b.Context(), def, nil); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := g; i < b.N; i += 64 {
				tt.Start("bench-fire", nil)
			}
		})
	}
	wg.Wait()
	cpu0 := cpuTime()
	b.ResetTimer()
	tt.Clock.Advance(time.Hour)
	tt.RunUntilIdle()
	b.StopTimer()
	cpu := cpuTime() - cpu0
	left, err := tt.Engine.Store().CountTasks(b.Context(), &ordostore.CountTasksParams{})
	if err != nil || left != 0 {
		b.Fatalf("%d timers left (error %v)", left, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "timers/s")
	// CPU time (user+system, all threads) per timer fired: unlike the
	// elapsed time, it does not depend on what else the machine runs.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/timer")
}

// cpuTime returns the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func TestRun_TimersSpread(t *testing.T) {
	t.Parallel()
	res, err := Run(t.Context(), Options{Workload: WorkloadTimers, Instances: 300, Concurrency: 20, Spread: 500 * time.Millisecond})
	require.NoError(t, err, "every timer fired, none before its own due time")
	require.Equal(t, 0.5, res.SpreadSeconds)
	require.GreaterOrEqual(t, res.Seconds, 0.495, "the last timer is due near T+500ms")
	require.GreaterOrEqual(t, res.MaxMs, res.P99Ms)
	var out strings.Builder
	res.Print(&out)
	require.Contains(t, out.String(), "due evenly from T to T+0.5s")
}
