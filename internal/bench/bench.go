// Package bench runs Ordo's reference workloads end to end and measures
// throughput, start-to-finish latency and memory. It backs `ordo bench`.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordopostgres"
	"github.com/ordoflow/ordo/ordostore"
)

// Workloads.
const (
	// WorkloadLinear3 is three sequential no-op steps: the shape used to
	// compare workflow engines.
	WorkloadLinear3 = "linear3"
	// WorkloadOrder is the order-fulfilment flow with no-op handlers:
	// payment, then inventory and label in parallel (and a gift for one
	// order in four), then ship, then notify.
	WorkloadOrder = "order"
)

// Workloads lists the workloads, for help texts.
var Workloads = []string{WorkloadLinear3, WorkloadOrder, WorkloadTimers}

// Options configure a run.
type Options struct {
	Workload    string
	Instances   int
	Concurrency int
	// DB is the SQLite file, which must not exist, or a postgres:// URL, on
	// which the run gets a fresh schema, dropped afterwards. Empty means a
	// fresh SQLite file in a temporary directory, removed afterwards.
	DB string
	// Workers is the engine's step worker count (0: the engine's default).
	Workers int
	// Nodes is the number of engines, on PostgreSQL only: with more than
	// one, the first runs the api role (it starts the instances) and the
	// others the executor, effects and timers roles, each with its own
	// connection pool, as separate processes would. 0 or 1: one engine
	// with every role.
	Nodes int
	// Spread, for timers, spreads the due times evenly over [T, T+Spread)
	// instead of putting them all at T; lateness is then measured from
	// each timer's own due time.
	Spread time.Duration
}

// Result is what a run measured. Its JSON form is `ordo bench -o json`.
type Result struct {
	Workload    string `json:"workload"`
	Store       string `json:"store"`
	DB          string `json:"db"`
	Instances   int    `json:"instances"`
	Concurrency int    `json:"concurrency"`
	// CreateSeconds is how long starting the instances took (timers).
	CreateSeconds float64 `json:"create_seconds,omitempty"`
	// Seconds is the run's duration; for timers, from T to the last firing.
	Seconds float64 `json:"seconds"`
	// PerSecond is instances per second; for timers, timers fired per
	// second from T to the last firing.
	PerSecond float64 `json:"per_second"`
	// FirstMs is, for timers, the least lateness: with every timer due at
	// T, that of the first timer fired.
	FirstMs float64 `json:"first_ms,omitempty"`
	// SpreadSeconds is, for timers, the span their due times cover (0:
	// all due at T).
	SpreadSeconds float64 `json:"spread_seconds,omitempty"`
	// P50Ms, P99Ms and MaxMs are start-to-finish latencies; for timers,
	// lateness: completion time − T.
	// Workers and WorkerConcurrency are set by RunServer: the worker SDK
	// workers that did the steps, and the tasks each ran at once.
	Workers           int `json:"workers,omitempty"`
	WorkerConcurrency int `json:"worker_concurrency,omitempty"`
	// Polls and Tasks are set by RunServer: the polls the server answered
	// and the task completions it accepted.
	Polls       int64   `json:"polls,omitempty"`
	Tasks       int64   `json:"tasks,omitempty"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	PeakRSSMB   float64 `json:"peak_rss_mb"`
	Commits     int64   `json:"commits"`
	Transitions int64   `json:"transitions"`
	Conflicts   int64   `json:"conflicts"`
	Nodes       int     `json:"nodes"`
	GoVersion   string  `json:"go_version"`
	CPUs        int     `json:"cpus"`
}

// Definition returns a workload's workflow definition.
func Definition(workload string) (*ordo.Definition, error) {
	switch workload {
	case WorkloadLinear3:
		return ordo.NewWorkflow("bench-linear3").
			Step(ordo.Task("a", "noop")).
			Step(ordo.Task("b", "noop").After("a")).
			Step(ordo.Task("c", "noop").After("b")).
			Build()
	case WorkloadOrder:
		return ordo.NewWorkflow("bench-order").
			Step(ordo.Task("payment", "noop")).
			Step(ordo.Task("reserve-inventory", "noop").After("payment")).
			Step(ordo.Task("create-label", "noop").After("payment")).
			Step(ordo.Task("vip-gift", "noop").After("payment").When("input.vip == true")).
			Step(ordo.Task("ship", "noop").After("reserve-inventory", "create-label", "vip-gift")).
			Step(ordo.Task("notify", "noop").After("ship")).
			Build()
	case WorkloadTimers:
		return timersDefinition()
	}
	return nil, fmt.Errorf("unknown workload %q (want one of %s)", workload, strings.Join(Workloads, ", "))
}

func noop(context.Context, *ordo.StepRequest) (ordo.Result, error) {
	return ordo.Result{Output: json.RawMessage(`{"ok":true}`)}, nil
}

// Run runs a workload: Concurrency goroutines each start an instance and
// wait for its end, until Instances have completed.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Instances <= 0 || opts.Concurrency <= 0 {
		return nil, errors.New("instances and concurrency must be positive")
	}
	def, err := Definition(opts.Workload)
	if err != nil {
		return nil, err
	}
	if opts.Workload == WorkloadTimers {
		return runTimers(ctx, opts)
	}
	open, storeName, db, cleanup, err := benchStore(ctx, opts.DB)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	nodes := max(opts.Nodes, 1)
	if nodes > 1 && storeName != "postgres" {
		return nil, errors.New("--nodes above 1 needs a postgres:// database")
	}
	var engines []*ordo.Engine
	for n := range nodes {
		cfg := &ordo.Config{
			Workers: opts.Workers,
			Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		}
		if nodes > 1 {
			cfg.Roles = []string{ordo.RoleExecutor, ordo.RoleEffects, ordo.RoleTimers}
			if n == 0 {
				cfg.Roles = []string{ordo.RoleAPI}
			}
		}
		eng, err := ordo.Open(ctx, open, cfg)
		if err != nil {
			return nil, err
		}
		defer eng.Close(context.WithoutCancel(ctx))
		if _, err := eng.Register(ctx, def, ordo.Handlers{"noop": noop}); err != nil {
			return nil, err
		}
		engines = append(engines, eng)
	}
	eng := engines[0]
	// The instances end on the executor nodes: wait there, on each, for
	// the first to see the end (an engine's Wait is answered by its own
	// commits at once, and by the store only at its poll).
	waitOn := engines
	if nodes > 1 {
		waitOn = engines[1:]
	}
	wait := func(ctx context.Context, id string) (*ordo.Instance, error) {
		if len(waitOn) == 1 {
			return waitOn[0].Wait(ctx, id)
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		type answer struct {
			inst *ordo.Instance
			err  error
		}
		answers := make(chan answer, len(waitOn))
		for _, e := range waitOn {
			go func() {
				inst, err := e.Wait(ctx, id)
				answers <- answer{inst, err}
			}()
		}
		a := <-answers
		return a.inst, a.err
	}

	lat := make([]time.Duration, opts.Instances)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, opts.Concurrency)
	start := time.Now()
	for range opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= opts.Instances {
					return
				}
				input := `{"orderId":"o-` + strconv.Itoa(i) + `","vip":` + strconv.FormatBool(i%4 == 0) + `}`
				t0 := time.Now()
				id, err := eng.Start(ctx, def.Name(), json.RawMessage(input))
				if err == nil {
					var inst *ordo.Instance
					inst, err = wait(ctx, id)
					if err == nil && inst.Status != ordo.StatusCompleted {
						err = fmt.Errorf("instance %s ended %s: %v", id, inst.Status, inst.Error)
					}
				}
				if err != nil {
					errc <- err
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	slices.Sort(lat)
	var stats ordo.Stats
	for _, e := range engines {
		s := e.Stats()
		stats.Batches += s.Batches
		stats.Transitions += s.Transitions
		stats.Conflicts += s.Conflicts
	}
	return &Result{
		Nodes:       nodes,
		Workload:    opts.Workload,
		Store:       storeName,
		DB:          db,
		Instances:   opts.Instances,
		Concurrency: opts.Concurrency,
		Seconds:     round(elapsed.Seconds(), 3),
		PerSecond:   round(float64(opts.Instances)/elapsed.Seconds(), 1),
		P50Ms:       ms(lat[len(lat)*50/100]),
		P99Ms:       ms(lat[min(len(lat)-1, len(lat)*99/100)]),
		MaxMs:       ms(lat[len(lat)-1]),
		PeakRSSMB:   peakRSSMB(),
		Commits:     stats.Batches,
		Transitions: stats.Transitions,
		Conflicts:   stats.Conflicts,
		GoVersion:   runtime.Version(),
		CPUs:        runtime.NumCPU(),
	}, nil
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 2) }

func round(v float64, places int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', places, 64), 64)
	return f
}

// peakRSSMB reads the process's peak resident set size (VmHWM) on Linux; 0
// elsewhere.
func peakRSSMB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			if err == nil {
				return round(kb/1024, 1)
			}
		}
	}
	return 0
}

// benchStore returns the opener of a fresh store for db, the store's name,
// where it is, and what removes it afterwards.
func benchStore(ctx context.Context, db string) (ordo.StoreOpener, string, string, func(), error) {
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		schema := fmt.Sprintf("ordo_bench_%d", time.Now().UnixNano())
		open := func(ctx context.Context) (ordostore.Store, error) {
			return ordopostgres.Open(ctx, db, &ordopostgres.Config{Schema: schema, MaxConns: 16})
		}
		cleanup := func() {
			conn, err := pgx.Connect(context.WithoutCancel(ctx), db)
			if err != nil {
				return
			}
			defer conn.Close(context.WithoutCancel(ctx))
			_, _ = conn.Exec(context.WithoutCancel(ctx), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
		}
		return open, "postgres", redact(db) + " schema " + schema, cleanup, nil
	}
	if db == "" {
		dir, err := os.MkdirTemp("", "ordo-bench-")
		if err != nil {
			return nil, "", "", nil, err
		}
		db = filepath.Join(dir, "bench.db")
		return ordo.SQLite(db), "sqlite", db, func() { os.RemoveAll(dir) }, nil
	}
	if _, err := os.Stat(db); err == nil {
		return nil, "", "", nil, fmt.Errorf("%s exists: the benchmark needs a fresh database file", db)
	}
	return ordo.SQLite(db), "sqlite", db, func() {}, nil
}

// redact hides a password in a database URL.
func redact(db string) string {
	u, err := url.Parse(db)
	if err != nil {
		return "postgres"
	}
	return u.Redacted()
}

// Print writes r for people.
func (r *Result) Print(w io.Writer) {
	if r.Workload == WorkloadTimers {
		r.printTimers(w)
		return
	}
	fmt.Fprintf(w, "workload     %s\n", r.Workload)
	if r.Store == "server" {
		r.printServer(w)
		return
	}
	durable := "synchronous=FULL"
	if r.Store == "postgres" {
		durable = "synchronous_commit=on"
	}
	fmt.Fprintf(w, "store        %s (%s) %s\n", r.Store, durable, r.DB)
	fmt.Fprintf(w, "instances    %d (concurrency %d)\n", r.Instances, r.Concurrency)
	if r.Nodes > 1 {
		fmt.Fprintf(w, "nodes        %d (1 api, %d executor,effects,timers)\n", r.Nodes, r.Nodes-1)
	}
	fmt.Fprintf(w, "elapsed      %.3fs\n", r.Seconds)
	fmt.Fprintf(w, "throughput   %.1f instances/s\n", r.PerSecond)
	fmt.Fprintf(w, "latency      p50 %.2fms  p99 %.2fms  max %.2fms\n", r.P50Ms, r.P99Ms, r.MaxMs)
	fmt.Fprintf(w, "peak RSS     %.1f MB\n", r.PeakRSSMB)
	avg := 0.0
	if r.Commits > 0 {
		avg = float64(r.Transitions) / float64(r.Commits)
	}
	fmt.Fprintf(w, "commits      %d (%.1f transitions each), %d conflicts\n", r.Commits, avg, r.Conflicts)
	fmt.Fprintf(w, "machine      %d CPUs, %s\n", r.CPUs, r.GoVersion)
}

func (r *Result) printServer(w io.Writer) {
	fmt.Fprintf(w, "server       %s (every step on a worker queue)\n", r.DB)
	fmt.Fprintf(w, "workers      %d worker SDK workers x %d tasks at once, in this process\n", r.Workers, r.WorkerConcurrency)
	fmt.Fprintf(w, "instances    %d (concurrency %d, started through the API)\n", r.Instances, r.Concurrency)
	fmt.Fprintf(w, "elapsed      %.3fs\n", r.Seconds)
	fmt.Fprintf(w, "throughput   %.1f instances/s\n", r.PerSecond)
	fmt.Fprintf(w, "latency      p50 %.2fms  p99 %.2fms  max %.2fms (start request to the last step's completion accepted)\n", r.P50Ms, r.P99Ms, r.MaxMs)
	perPoll := 0.0
	if r.Polls > 0 {
		perPoll = float64(r.Tasks) / float64(r.Polls)
	}
	fmt.Fprintf(w, "requests     %d tasks completed, %d polls (%.1f tasks each)\n", r.Tasks, r.Polls, perPoll)
	fmt.Fprintf(w, "peak RSS     %.1f MB (this process: the workers and starters, not the server)\n", r.PeakRSSMB)
	fmt.Fprintf(w, "machine      %d CPUs, %s\n", r.CPUs, r.GoVersion)
}
