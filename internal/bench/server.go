package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/worker"
)

// ServerOptions configure a run against an Ordo server ([RunServer]).
type ServerOptions struct {
	// Server is the server's base URL; Token a bearer token that may
	// deploy and start (admin), or empty for a server without tokens.
	Server string
	Token  string
	// Workload is WorkloadOrder or WorkloadLinear3.
	Workload    string
	Instances   int
	Concurrency int
	// Workers is how many worker SDK workers run in this process (default
	// 4), each with WorkerConcurrency tasks at once (default 16).
	Workers           int
	WorkerConcurrency int
}

// Defaults of [ServerOptions].
const (
	DefaultServerWorkers     = 4
	DefaultWorkerConcurrency = 16
)

// RemoteDefinition returns a workload's definition with every step on a
// worker queue instead of a Go handler, and the id of its last step.
func RemoteDefinition(workload string) (*ordo.Definition, string, error) {
	switch workload {
	case WorkloadLinear3:
		def, err := ordo.NewWorkflow("bench-linear3-remote").
			Step(ordo.QueueTask("a", "bench.a")).
			Step(ordo.QueueTask("b", "bench.b").After("a")).
			Step(ordo.QueueTask("c", "bench.c").After("b")).
			Build()
		return def, "c", err
	case WorkloadOrder:
		def, err := ordo.NewWorkflow("bench-order-remote").
			Step(ordo.QueueTask("payment", "bench.payment")).
			Step(ordo.QueueTask("reserve-inventory", "bench.inventory").After("payment")).
			Step(ordo.QueueTask("create-label", "bench.label").After("payment")).
			Step(ordo.QueueTask("vip-gift", "bench.gift").After("payment").When("input.vip == true")).
			Step(ordo.QueueTask("ship", "bench.ship").After("reserve-inventory", "create-label", "vip-gift")).
			Step(ordo.QueueTask("notify", "bench.notify").After("ship")).
			Build()
		return def, "notify", err
	}
	return nil, "", fmt.Errorf("unknown workload %q (want %s or %s)", workload, WorkloadLinear3, WorkloadOrder)
}

// remoteQueues are the queues of the remote workloads.
var remoteQueues = map[string][]string{
	WorkloadLinear3: {"bench.a", "bench.b", "bench.c"},
	WorkloadOrder:   {"bench.payment", "bench.inventory", "bench.label", "bench.gift", "bench.ship", "bench.notify"},
}

// RunServer runs a workload through an Ordo server and remote workers: it
// deploys the workload's definition (every step on a worker queue), runs
// Workers worker SDK workers in this process, and has Concurrency
// goroutines each start an instance through the API and wait for its end,
// until Instances have completed.
//
// An instance's end is seen when the server accepts the completion of its
// last step, so the latency is start request to committed end, as a client
// of the API would see it with no polling delay.
func RunServer(ctx context.Context, opts ServerOptions) (*Result, error) {
	if opts.Instances <= 0 || opts.Concurrency <= 0 {
		return nil, errors.New("instances and concurrency must be positive")
	}
	if opts.Workers == 0 {
		opts.Workers = DefaultServerWorkers
	}
	if opts.WorkerConcurrency == 0 {
		opts.WorkerConcurrency = DefaultWorkerConcurrency
	}
	if opts.Workers < 0 || opts.WorkerConcurrency < 0 {
		return nil, errors.New("workers and worker concurrency must be positive")
	}
	def, last, err := RemoteDefinition(opts.Workload)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = opts.Concurrency + 8
	defer tr.CloseIdleConnections()
	client, err := ordoclient.New(opts.Server, &ordoclient.Options{Token: opts.Token, HTTPClient: &http.Client{Transport: tr, Timeout: time.Minute}, UserAgent: "ordo-bench"})
	if err != nil {
		return nil, err
	}
	if err := client.Ready(ctx); err != nil {
		return nil, fmt.Errorf("server %s is not ready: %w", opts.Server, err)
	}
	if _, err := client.Deploy(ctx, def.JSON(), "application/json"); err != nil {
		return nil, fmt.Errorf("deploying %s: %w", def.Name(), err)
	}

	// The last step's handler notes its task; the worker's transport sees
	// that task's completion accepted, which ends the instance.
	ends := &endWatch{lastTasks: map[string]string{}, done: map[string]chan struct{}{}}
	noop := func(ctx context.Context, t *worker.Task) (*worker.Result, error) {
		if t.Step == last {
			ends.noteLast(t.ID, t.InstanceID)
		}
		return &worker.Result{Output: json.RawMessage(`{"ok":true}`)}, nil
	}
	wctx, stopWorkers := context.WithCancel(context.WithoutCancel(ctx))
	var wwg sync.WaitGroup
	werrs := make(chan error, opts.Workers)
	for i := range opts.Workers {
		wtr := http.DefaultTransport.(*http.Transport).Clone()
		wtr.MaxIdleConnsPerHost = 2*opts.WorkerConcurrency + 2
		w, err := worker.New(worker.Options{
			Server:      opts.Server,
			Token:       opts.Token,
			Name:        fmt.Sprintf("bench-%d", i),
			Concurrency: opts.WorkerConcurrency,
			PollWait:    5 * time.Second,
			HTTPClient:  &http.Client{Transport: &endTransport{rt: wtr, ends: ends}},
			Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err != nil {
			stopWorkers()
			return nil, err
		}
		for _, q := range remoteQueues[opts.Workload] {
			w.Handle(q, noop)
		}
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			defer wtr.CloseIdleConnections()
			if err := w.Run(wctx); err != nil {
				werrs <- err
			}
		}()
	}
	defer func() {
		stopWorkers()
		wwg.Wait()
	}()

	lat := make([]time.Duration, opts.Instances)
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, opts.Concurrency)
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	start := time.Now()
	for range opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= opts.Instances {
					return
				}
				input := `{"orderId":"b-` + strconv.FormatInt(start.UnixNano(), 36) + "-" + strconv.Itoa(i) + `","vip":` + strconv.FormatBool(i%4 == 0) + `}`
				t0 := time.Now()
				res, err := client.Start(runCtx, def.Name(), &ordoclient.StartRequest{Input: json.RawMessage(input)})
				if err == nil {
					err = ends.wait(runCtx, res.ID, time.Minute)
				}
				if err != nil {
					errc <- err
					cancelRun()
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
	select {
	case err := <-werrs:
		return nil, err
	default:
	}
	slices.Sort(lat)
	return &Result{
		Workload:          opts.Workload,
		Store:             "server",
		DB:                opts.Server,
		Instances:         opts.Instances,
		Concurrency:       opts.Concurrency,
		Workers:           opts.Workers,
		WorkerConcurrency: opts.WorkerConcurrency,
		Seconds:           round(elapsed.Seconds(), 3),
		PerSecond:         round(float64(opts.Instances)/elapsed.Seconds(), 1),
		P50Ms:             ms(lat[len(lat)*50/100]),
		P99Ms:             ms(lat[min(len(lat)-1, len(lat)*99/100)]),
		MaxMs:             ms(lat[len(lat)-1]),
		PeakRSSMB:         peakRSSMB(),
		Polls:             ends.polls.Load(),
		Tasks:             ends.tasks.Load(),
		GoVersion:         runtime.Version(),
		CPUs:              runtime.NumCPU(),
	}, nil
}

// endWatch tells the starters when their instances end.
type endWatch struct {
	polls, tasks atomic.Int64 // polls answered, completions accepted
	mu           sync.Mutex
	lastTasks    map[string]string        // task id of a last step -> instance id
	done         map[string]chan struct{} // instance id -> closed when it ended
}

func (e *endWatch) ch(instance string) chan struct{} {
	c, ok := e.done[instance]
	if !ok {
		c = make(chan struct{})
		e.done[instance] = c
	}
	return c
}

func (e *endWatch) noteLast(task, instance string) {
	e.mu.Lock()
	e.lastTasks[task] = instance
	e.mu.Unlock()
}

// completed is called when the server accepted the completion of task.
func (e *endWatch) completed(task string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	inst, ok := e.lastTasks[task]
	if !ok {
		return
	}
	delete(e.lastTasks, task)
	close(e.ch(inst))
}

func (e *endWatch) wait(ctx context.Context, instance string, timeout time.Duration) error {
	e.mu.Lock()
	c := e.ch(instance)
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.done, instance)
		e.mu.Unlock()
	}()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(timeout):
		return fmt.Errorf("instance %s did not end within %s (is it parked for review? try ordo get %s)", instance, timeout, instance)
	}
}

// endTransport passes the worker's requests on and tells ends about every
// completion the server accepted.
type endTransport struct {
	rt   http.RoundTripper
	ends *endWatch
}

func (t *endTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusOK && r.Method == http.MethodPost {
		if rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/tasks/"); ok {
			switch {
			case rest == "poll":
				t.ends.polls.Add(1)
			case strings.HasSuffix(rest, "/complete"):
				t.ends.tasks.Add(1)
				t.ends.completed(strings.TrimSuffix(rest, "/complete"))
			}
		}
	}
	return resp, err
}
