package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

// metered is a server whose engine feeds its metrics, with a reader token
// "r", and JSON logs at debug level in logs.
type metered struct {
	*testBundle
	logs *lockedBuffer
}

func setupMetered(t *testing.T, cfg *ordo.Config) *metered {
	t.Helper()
	ctx := context.Background()
	m := NewMetrics()
	if cfg == nil {
		cfg = &ordo.Config{}
	}
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Logger, cfg.Observer, cfg.PollInterval = logger, m.Observer(), 20*time.Millisecond
	eng, err := ordo.Open(ctx, ordo.SQLite(filepath.Join(t.TempDir(), "ordo.db")), cfg)
	require.NoError(t, err)
	srv, err := New(&Options{Engine: eng, Addr: "127.0.0.1:0", Logger: logger, Metrics: m,
		Tokens: map[string]Role{"r": RoleReader, "a": RoleAdmin}})
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		require.NoError(t, srv.Stop(ctx))
		require.NoError(t, eng.Close(ctx))
	})
	return &metered{testBundle: &testBundle{eng: eng, srv: srv, base: "http://" + srv.Addr(), doc: loadOpenAPI(t)}, logs: logs}
}

// scrape returns the samples of GET /metrics, by "name{labels}" as
// Prometheus writes them (labels sorted by name).
func (b *metered) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	res := b.do(t, request{method: "GET", path: "/metrics", token: "r"})
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	require.True(t, strings.HasPrefix(res.header.Get("Content-Type"), "text/plain"), res.header.Get("Content-Type"))
	out := map[string]float64{}
	for _, line := range strings.Split(string(res.body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		require.NoError(t, err, line)
		out[line[:i]] = v
	}
	return out
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) }))
	t.Cleanup(ok.Close)
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "gone", http.StatusGone) }))
	t.Cleanup(gone.Close)

	b := setupMetered(t, nil)
	ctx := t.Context()
	def := ordo.NewWorkflow("metered").OnFailure(ordo.FailureReview).
		Step(ordo.HTTPStep("call", "POST", ok.URL)).
		Step(ordo.Task("work", "work").After("call")).
		MustBuild()
	work := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		var in struct{ Fail bool }
		json.Unmarshal(req.WorkflowInput, &in)
		if in.Fail {
			return ordo.Result{}, ordo.NonRetryable(ordo.WithCode("card_declined", errors.New("declined")))
		}
		return ordo.Result{SideEffects: []ordo.SideEffect{ordo.HTTPEffect("POST", gone.URL, nil)}}, nil
	}
	_, err := b.eng.Register(ctx, def, ordo.Handlers{"work": work})
	require.NoError(t, err)
	stuck, err := ordo.ParseDefinition([]byte("workflow: stuck\nsteps:\n  - id: wait\n    task: {queue: nobody}\n"), "stuck.yaml")
	require.NoError(t, err)
	_, err = b.eng.Deploy(ctx, stuck)
	require.NoError(t, err)

	done, err := b.eng.Start(ctx, "metered", map[string]bool{"fail": false})
	require.NoError(t, err)
	parked, err := b.eng.Start(ctx, "metered", map[string]bool{"fail": true})
	require.NoError(t, err)
	_, err = b.eng.Start(ctx, "stuck", nil)
	require.NoError(t, err)
	inst, err := b.eng.Wait(ctx, done)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	inst, err = b.eng.Wait(ctx, parked)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusReview, inst.Status)
	// The effect's 410 is not retried: wait for its failure to be journaled
	// and observed (the engine counts the try before it journals it).
	var m map[string]float64
	require.Eventually(t, func() bool {
		m = b.scrape(t)
		return m[`ordo_effect_failures_total{type="http",workflow="metered"}`] == 1
	}, 10*time.Second, 10*time.Millisecond)
	scrapes := m[`ordo_http_requests_total{route="GET /metrics",status="200"}`] + 1
	for sample, want := range map[string]float64{
		`ordo_instances_started_total{workflow="metered"}`:                                    2,
		`ordo_instances_started_total{workflow="stuck"}`:                                      1,
		`ordo_instances_ended_total{status="completed",workflow="metered"}`:                   1,
		`ordo_instances_parked_total{workflow="metered"}`:                                     1,
		`ordo_instance_cycle_seconds_count{status="completed",workflow="metered"}`:            1,
		`ordo_step_duration_seconds_count{status="completed",step="call",workflow="metered"}`: 2,
		`ordo_step_duration_seconds_count{status="completed",step="work",workflow="metered"}`: 1,
		`ordo_step_duration_seconds_count{status="failed",step="work",workflow="metered"}`:    1,
		`ordo_step_failures_total{code="card_declined",step="work",workflow="metered"}`:       1,
		`ordo_effect_failures_total{type="http",workflow="metered"}`:                          1,
		`ordo_engine_effect_failures_total`:                                                   1,
		// Gauges read from the store.
		`ordo_instances{status="review",workflow="metered"}`:  1,
		`ordo_instances{status="running",workflow="metered"}`: 0,
		`ordo_instances{status="running",workflow="stuck"}`:   1,
		`ordo_queue_depth{kind="step",queue="nobody"}`:        1,
		`ordo_metrics_store_up`:                               1,
	} {
		got, ok := m[sample]
		require.True(t, ok, "no sample %s", sample)
		require.Equal(t, want, got, sample)
	}
	require.NotContains(t, m, `ordo_instances_ended_total{status="completed",workflow="stuck"}`)
	require.Contains(t, m, "go_goroutines")
	require.Contains(t, m, "process_resident_memory_bytes")
	require.Greater(t, m[`ordo_http_requests_total{route="GET /metrics",status="200"}`]+1, 0.0)

	// The metrics need a token when the server has tokens.
	res := b.do(t, request{method: "GET", path: "/metrics"})
	require.Equal(t, http.StatusUnauthorized, res.status)

	// A scrape counts the ones before it.
	require.Equal(t, scrapes, b.scrape(t)[`ordo_http_requests_total{route="GET /metrics",status="200"}`])

	// The engine's lines about a step carry the instance and the step.
	var completed, failed bool
	for _, line := range b.logs.lines(t) {
		switch {
		case line["msg"] == "step attempt completed" && line["ordo.instance.id"] == done && line["ordo.step.id"] == "work":
			completed = true
		case line["msg"] == "step attempt failed" && line["ordo.instance.id"] == parked && line["ordo.step.id"] == "work":
			failed = line["code"] == "card_declined" && line["ordo.step.attempt"] == 1.0
		}
	}
	require.True(t, completed, "a debug line for the completed attempt")
	require.True(t, failed, "a debug line for the failed attempt, with its code")
}

// TestMetrics_LeaseExpiries checks that a task whose worker's lease ran out
// and that is polled again is counted by a counter, not shown by a gauge.
func TestMetrics_LeaseExpiries(t *testing.T) {
	t.Parallel()
	b := setupMetered(t, &ordo.Config{TaskLease: 200 * time.Millisecond})
	ctx := t.Context()
	def, err := ordo.ParseDefinition([]byte("workflow: leased\nsteps:\n  - id: work\n    task: {queue: slow}\n"), "leased.yaml")
	require.NoError(t, err)
	_, err = b.eng.Deploy(ctx, def)
	require.NoError(t, err)
	_, err = b.eng.Start(ctx, "leased", nil)
	require.NoError(t, err)
	require.Zero(t, b.scrape(t)["ordo_task_lease_expiries_total"])

	poll := &ordo.PollParams{Queues: []string{"slow"}, Worker: "w1", Wait: 5 * time.Second}
	first, err := b.eng.PollTasks(ctx, poll)
	require.NoError(t, err)
	require.Len(t, first, 1)
	// w1 sends no heartbeat: its lease runs out and w2 takes the task.
	time.Sleep(300 * time.Millisecond)
	poll.Worker = "w2"
	second, err := b.eng.PollTasks(ctx, poll)
	require.NoError(t, err)
	require.Len(t, second, 1)
	require.Equal(t, first[0].ID, second[0].ID)
	require.Equal(t, 2, second[0].Claim)

	m := b.scrape(t)
	require.Equal(t, 1.0, m["ordo_task_lease_expiries_total"])
	res := b.do(t, request{method: "GET", path: "/metrics", token: "r"})
	require.Contains(t, string(res.body), "# TYPE ordo_task_lease_expiries_total counter")
	require.NotContains(t, string(res.body), "ordo_queue_expired_leases", "the gauge is gone")
}

func TestMetrics_OneEnginePerMetrics(t *testing.T) {
	t.Parallel()
	b := setupMetered(t, nil)
	_, err := New(&Options{Engine: b.eng, Metrics: b.srv.metrics})
	require.NoError(t, err, "a second server on the same engine may share them")
	other := setup(t, nil)
	_, err = New(&Options{Engine: other.eng, Metrics: b.srv.metrics})
	require.ErrorContains(t, err, "another engine")
}

func TestRequestLogs(t *testing.T) {
	t.Parallel()
	b := setupMetered(t, nil)
	_, err := b.eng.Deploy(t.Context(), mustParse(t, slowYAML))
	require.NoError(t, err)
	id, err := b.eng.Start(t.Context(), "slow", map[string]string{"orderId": "o-1"})
	require.NoError(t, err)

	hr, err := http.NewRequest("GET", b.base+"/api/v1/instances/"+id, nil)
	require.NoError(t, err)
	hr.Header.Set("Authorization", "Bearer r")
	hr.Header.Set("X-Request-Id", "req-42")
	resp, err := http.DefaultClient.Do(hr)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "req-42", resp.Header.Get("X-Request-Id"), "the request id is sent back")

	// Without an id (or with one that is not printable ASCII) one is made up.
	res := b.do(t, request{method: "GET", path: "/api/v1/instances/nope", token: "r"})
	require.Equal(t, http.StatusNotFound, res.status)
	made := res.header.Get("X-Request-Id")
	require.Len(t, made, 32)

	// Workers' successful calls log at debug, their refusals at info.
	res = b.do(t, request{method: "POST", path: "/api/v1/tasks/poll", token: "a", body: `{"queues":["nobody"],"worker":"w1"}`})
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	polled := res.header.Get("X-Request-Id")
	res = b.do(t, request{method: "POST", path: "/api/v1/tasks/999999/complete", token: "a", body: `{"claim":1}`})
	require.Equal(t, http.StatusNotFound, res.status, string(res.body))
	refused := res.header.Get("X-Request-Id")

	var found, notFound map[string]any
	levels := map[string]any{}
	for _, line := range b.logs.lines(t) {
		if line["msg"] != "request" {
			continue
		}
		switch line["request_id"] {
		case "req-42":
			found = line
		case made:
			notFound = line
		case polled, refused:
			levels[line["request_id"].(string)] = line["level"]
		}
	}
	require.Equal(t, map[string]any{polled: "DEBUG", refused: "INFO"}, levels)
	require.NotNil(t, found, "a log line for the request")
	require.Equal(t, "GET", found["method"])
	require.Equal(t, "GET /api/v1/instances/{id}", found["route"])
	require.Equal(t, 200.0, found["status"])
	require.Equal(t, id, found["ordo.instance.id"])
	require.Contains(t, found, "duration")
	require.Equal(t, "INFO", found["level"])
	require.NotNil(t, notFound)
	require.Equal(t, 404.0, notFound["status"])
	require.Equal(t, "nope", notFound["ordo.instance.id"])
}

func mustParse(t *testing.T, yaml string) *ordo.Definition {
	t.Helper()
	def, err := ordo.ParseDefinition([]byte(yaml), "test.yaml")
	require.NoError(t, err)
	return def
}
