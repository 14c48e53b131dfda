package ordo_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordotest"
)

// observed records what an Observer is told.
type observed struct {
	mu       sync.Mutex
	statuses []string
	steps    []string
	effects  []string
}

func (o *observed) observer() *ordo.Observer {
	return &ordo.Observer{
		InstanceStatus: func(c ordo.InstanceStatusChange) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.statuses = append(o.statuses, c.Workflow+":"+string(c.From)+"->"+string(c.To))
			if c.To == ordo.StatusCompleted && c.At.Before(c.CreatedAt) {
				o.statuses = append(o.statuses, "ended before it started")
			}
		},
		StepEnded: func(s ordo.StepEnded) {
			o.mu.Lock()
			defer o.mu.Unlock()
			line := s.Step + "#" + string(rune('0'+s.Attempt)) + ":" + string(s.Status)
			if s.Err != nil {
				line += ":" + s.Err.Code
			}
			if s.StartedAt.IsZero() || s.FinishedAt.Before(s.StartedAt) {
				line += ":bad times"
			}
			o.steps = append(o.steps, line)
		},
		EffectFailed: func(e ordo.EffectFailed) {
			o.mu.Lock()
			defer o.mu.Unlock()
			line := e.Step + ":" + e.Type + ":" + e.Err.Code
			if e.Retrying {
				line += ":retrying"
			}
			o.effects = append(o.effects, line)
		},
	}
}

func TestObserver_IsToldStatusesStepsAndEffectFailures(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, 1, `{"label":"L-1"}`) // the step's first try gets a 503
	mail := newRecorder(t, 1, `{}`)             // and the effect's first try
	var obs observed
	tt := ordotest.New(t, &ordotest.Options{Config: &ordo.Config{HTTPClient: rec.srv.Client(), Observer: obs.observer()}})
	def := ordo.NewWorkflow("observed").
		Step(ordo.HTTPStep("label", "POST", rec.srv.URL+"/labels")).
		Step(ordo.Task("notify", "notify").After("label").WaitEffects()).
		MustBuild()
	notify := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		return ordo.Result{SideEffects: []ordo.SideEffect{ordo.HTTPEffect("POST", mail.srv.URL+"/mail", nil)}}, nil
	}
	_, err := tt.Engine.Register(t.Context(), def, ordo.Handlers{"notify": notify})
	require.NoError(t, err)
	id := tt.Start("observed", nil)
	tt.RunUntilIdle()
	tt.RequireStatus(id, ordo.StatusCompleted)

	obs.mu.Lock()
	defer obs.mu.Unlock()
	require.Equal(t, []string{"observed:->running", "observed:running->completed"}, obs.statuses)
	require.Equal(t, []string{"label#1:failed:http_503", "label#2:completed", "notify#1:completed"}, obs.steps)
	require.Len(t, obs.effects, 1)
	require.Equal(t, "notify:http:http_503:retrying", obs.effects[0])
	require.Equal(t, int64(1), tt.Engine.Stats().EffectFailures)
}

func TestEngine_InstanceKeepsItsTraceContext(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("traceparent"))
		mu.Unlock()
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	tt := ordotest.New(t, &ordotest.Options{Config: &ordo.Config{HTTPClient: srv.Client()}})
	def := ordo.NewWorkflow("traced").
		Step(ordo.HTTPStep("call", "POST", srv.URL)).
		Step(ordo.Task("effect", "effect").After("call").WaitEffects()).
		MustBuild()
	effect := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		return ordo.Result{SideEffects: []ordo.SideEffect{ordo.HTTPEffect("POST", srv.URL, nil)}}, nil
	}
	_, err := tt.Engine.Register(t.Context(), def, ordo.Handlers{"effect": effect})
	require.NoError(t, err)

	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	}))
	id, err := tt.Engine.Start(ctx, "traced", nil)
	require.NoError(t, err)
	tt.RunUntilIdle()
	tt.RequireStatus(id, ordo.StatusCompleted)

	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	mu.Lock()
	require.Equal(t, []string{want, want}, got, "the http step and the http effect carry the trace the instance started in")
	mu.Unlock()

	events, err := tt.Engine.Journal(t.Context(), id)
	require.NoError(t, err)
	require.True(t, strings.Contains(string(events[0].Data), `"traceParent":"`+want+`"`), string(events[0].Data))

	// An instance started outside any trace sends no traceparent.
	mu.Lock()
	got = nil
	mu.Unlock()
	id = tt.Start("traced", nil)
	tt.RunUntilIdle()
	tt.RequireStatus(id, ordo.StatusCompleted)
	mu.Lock()
	require.Equal(t, []string{"", ""}, got)
	mu.Unlock()
}
