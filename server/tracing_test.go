package server

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/ordoflow/ordo"
)

// TestTracing_RequestTraceReachesHTTPStep starts instances through the API
// of a traced server and checks that the http step's outgoing request
// carries the trace of the API request that started it: the server's own
// span's trace when the request had no trace context, the caller's trace
// when it had one.
func TestTracing_RequestTraceReachesHTTPStep(t *testing.T) {
	t.Parallel()
	var (
		mu       sync.Mutex
		received []string // traceparent of each call the http step made
	)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received = append(received, r.Header.Get("traceparent"))
		mu.Unlock()
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(target.Close)
	lastReceived := func() string {
		mu.Lock()
		defer mu.Unlock()
		require.NotEmpty(t, received)
		return received[len(received)-1]
	}

	exporter := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exporter))
	ctx := context.Background()
	transport, err := (&HTTPPolicy{AllowLoopback: true}).Transport()
	require.NoError(t, err)
	client := &http.Client{Transport: otelhttp.NewTransport(transport,
		otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(propagation.TraceContext{}))}
	eng, err := ordo.Open(ctx, ordo.SQLite(filepath.Join(t.TempDir(), "ordo.db")), &ordo.Config{
		Logger: slog.New(slog.DiscardHandler), HTTPClient: client, PollInterval: 20 * time.Millisecond,
	})
	require.NoError(t, err)
	srv, err := New(&Options{Engine: eng, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler), TracerProvider: tp})
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		require.NoError(t, srv.Stop(ctx))
		require.NoError(t, eng.Close(ctx))
		require.NoError(t, tp.Shutdown(ctx))
	})
	def, err := ordo.ParseDefinition([]byte("workflow: traced\nsteps:\n  - id: call\n    http: {method: POST, url: \""+target.URL+"/hook\"}\n"), "traced.yaml")
	require.NoError(t, err)
	_, err = eng.Deploy(ctx, def)
	require.NoError(t, err)

	// start starts an instance through the API, waits for it, and returns
	// the trace id of the request's server span.
	start := func(incoming string) string {
		t.Helper()
		req, err := http.NewRequest("POST", "http://"+srv.Addr()+"/api/v1/workflows/traced/instances", strings.NewReader(`{}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if incoming != "" {
			req.Header.Set("traceparent", incoming)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
		var started struct{ ID string }
		require.NoError(t, json.Unmarshal(body, &started))
		inst, err := eng.Wait(ctx, started.ID)
		require.NoError(t, err)
		require.Equal(t, ordo.StatusCompleted, inst.Status)
		// The request's server span, named after its route.
		var traceID string
		for _, s := range exporter.GetSpans() {
			if s.Name == "POST /api/v1/workflows/{name}/instances" {
				traceID = s.SpanContext.TraceID().String()
			}
		}
		require.NotEmpty(t, traceID, "the request has a span")
		exporter.Reset()
		return traceID
	}

	// A request without trace context: the server's span starts a trace,
	// and the http step's call is part of it.
	traceID := start("")
	got := lastReceived()
	require.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`, got)
	require.Equal(t, traceID, strings.Split(got, "-")[1], "the http step's call carries the request's trace id")

	// A request in a caller's trace: the whole run stays in it.
	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	traceID = start("00-" + callerTrace + "-00f067aa0ba902b7-01")
	require.Equal(t, callerTrace, traceID, "the server span continues the caller's trace")
	got = lastReceived()
	require.Equal(t, callerTrace, strings.Split(got, "-")[1])
	require.NotEqual(t, "00f067aa0ba902b7", strings.Split(got, "-")[2], "the call is a span of its own")
}
