package worker_test

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/server"
	"github.com/ordoflow/ordo/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	operatorToken = "op-token"
	adminToken    = "admin-token"
)

// bundle is a started server on a fresh SQLite file.
type bundle struct {
	eng    *ordo.Engine
	base   string
	client *ordoclient.Client
}

// startServer starts an engine with the given task lease and a server over
// it, on a temporary SQLite file, with an operator and an admin token. Both
// stop when the test ends (after the workers, whose cleanups run first).
func startServer(t *testing.T, lease time.Duration) *bundle {
	t.Helper()
	ctx := context.Background()
	eng, err := ordo.Open(ctx, ordo.SQLite(filepath.Join(t.TempDir(), "ordo.db")), &ordo.Config{
		Logger:       slog.New(slog.DiscardHandler),
		PollInterval: 50 * time.Millisecond,
		TaskLease:    lease,
	})
	require.NoError(t, err)
	srv, err := server.New(&server.Options{
		Engine: eng,
		Addr:   "127.0.0.1:0",
		Tokens: map[string]server.Role{operatorToken: server.RoleOperator, adminToken: server.RoleAdmin},
		Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		require.NoError(t, srv.Stop(ctx))
		require.NoError(t, eng.Close(ctx))
	})
	base := "http://" + srv.Addr()
	client, err := ordoclient.New(base, &ordoclient.Options{Token: adminToken})
	require.NoError(t, err)
	return &bundle{eng: eng, base: base, client: client}
}

// deploy deploys a YAML definition.
func (b *bundle) deploy(t *testing.T, yaml string) {
	t.Helper()
	_, err := b.client.Deploy(context.Background(), []byte(yaml), "application/yaml")
	require.NoError(t, err)
}

// start starts an instance and returns its id.
func (b *bundle) start(t *testing.T, workflow, input string) string {
	t.Helper()
	res, err := b.client.Start(context.Background(), workflow, &ordoclient.StartRequest{Input: []byte(input)})
	require.NoError(t, err)
	return res.ID
}

// wait polls an instance until it has ended (or is parked for review).
func (b *bundle) wait(t *testing.T, id string) *ordoclient.Instance {
	t.Helper()
	var inst *ordoclient.Instance
	require.Eventually(t, func() bool {
		var err error
		inst, err = b.client.Get(context.Background(), id)
		require.NoError(t, err)
		switch inst.Status {
		case ordo.StatusCompleted, ordo.StatusFailed, ordo.StatusReview, ordo.StatusCancelled, ordo.StatusCompensated:
			return true
		}
		return false
	}, 20*time.Second, 10*time.Millisecond, "instance %s never ended", id)
	return inst
}

// journal returns the types of an instance's events, with the step.
func (b *bundle) journal(t *testing.T, id string) []ordoclient.Event {
	t.Helper()
	evs, err := b.client.Journal(context.Background(), id)
	require.NoError(t, err)
	return evs
}

// count returns how many events of type typ (for step, when not empty) the
// journal holds.
func count(evs []ordoclient.Event, typ, step string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ && (step == "" || e.Step == step) {
			n++
		}
	}
	return n
}

// workerOptions are the options of a test worker of b.
func (b *bundle) workerOptions(name string) worker.Options {
	return worker.Options{
		Server:      b.base,
		Token:       operatorToken,
		Name:        name,
		Concurrency: 4,
		PollWait:    time.Second,
		StopTimeout: 5 * time.Second,
		Logger:      slog.New(slog.DiscardHandler),
	}
}

// running is a worker running in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

// run runs w until the test ends or stop is called.
func run(t *testing.T, w *worker.Worker) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the worker and returns what Run returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok {
			close(r.done)
		}
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("the worker did not stop")
	}
	return nil
}

// faultyTransport passes requests to the real server, except the ones
// block says to hold: it holds them until release is closed.
type faultyTransport struct {
	mu      sync.Mutex
	block   func(*http.Request) bool
	held    int
	release chan struct{}
}

func newFaultyTransport(block func(*http.Request) bool) *faultyTransport {
	return &faultyTransport{block: block, release: make(chan struct{})}
}

func (f *faultyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.block(r) {
		f.mu.Lock()
		f.held++
		f.mu.Unlock()
		select {
		case <-f.release:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (f *faultyTransport) heldCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.held
}

func isHeartbeat(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/heartbeat") }

// gauge counts the handlers running at once, and the most ever at once.
type gauge struct{ now, peak atomic.Int32 }

// enter counts a handler in; the function it returns counts it out.
func (g *gauge) enter() func() {
	n := g.now.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return func() { g.now.Add(-1) }
}
