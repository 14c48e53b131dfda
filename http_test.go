package ordo_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordotest"
)

// recorder is a real HTTP server that records what it was sent and fails
// the first `fail` requests with a 503.
type recorder struct {
	mu    sync.Mutex
	fail  int
	keys  []string
	body  []string
	srv   *httptest.Server
	reply string
}

func newRecorder(t *testing.T, fail int, reply string) *recorder {
	r := &recorder{fail: fail, reply: reply}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.keys = append(r.keys, req.Header.Get("Idempotency-Key"))
		r.body = append(r.body, string(b))
		if r.fail > 0 {
			r.fail--
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, r.reply)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) seen() ([]string, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.keys...), append([]string(nil), r.body...)
}

func TestHTTPEffect_SendsIdempotencyKeyAndRetries(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, 2, `{}`)
	tt := ordotest.New(t, &ordotest.Options{Config: &ordo.Config{HTTPClient: rec.srv.Client()}})
	ctx := t.Context()
	def := ordo.NewWorkflow("mail").Step(ordo.Task("send", "send")).MustBuild()
	send := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		return ordo.Result{SideEffects: []ordo.SideEffect{ordo.HTTPEffect("POST", rec.srv.URL+"/receipts", map[string]string{"to": "ann@example.com"})}}, nil
	}
	_, err := tt.Engine.Register(ctx, def, ordo.Handlers{"send": send})
	require.NoError(t, err)
	id := tt.Start("mail", nil)
	tt.RunUntilIdle()
	tt.RequireStatus(id, ordo.StatusCompleted)

	keys, bodies := rec.seen()
	want := id + "/send/1/0"
	require.Equal(t, []string{want, want, want}, keys, "two 503s, then success, all with the same key")
	require.JSONEq(t, `{"to":"ann@example.com"}`, bodies[2])
}

func TestHTTPEffect_ClientErrorIsNotRetried(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no such mailbox", http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	tt := ordotest.New(t, &ordotest.Options{Config: &ordo.Config{HTTPClient: srv.Client()}})
	def := ordo.NewWorkflow("mail2").Step(ordo.Task("send", "send").WaitEffects()).MustBuild()
	send := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		return ordo.Result{SideEffects: []ordo.SideEffect{ordo.HTTPEffect("POST", srv.URL, nil)}}, nil
	}
	_, err := tt.Engine.Register(t.Context(), def, ordo.Handlers{"send": send})
	require.NoError(t, err)
	id := tt.Start("mail2", nil)
	tt.RunUntilIdle()
	inst := tt.RequireStatus(id, ordo.StatusFailed)
	require.Contains(t, inst.Error.Message, "http status 404")
	require.Equal(t, "http_404", inst.Error.Code)
}

func TestHTTPStep_PostsInputAndUsesResponseAsOutput(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, 1, `{"label":"LBL-1"}`)
	tt := ordotest.New(t, &ordotest.Options{Config: &ordo.Config{HTTPClient: rec.srv.Client()}})
	def := ordo.NewWorkflow("label").
		Step(ordo.HTTPStep("create-label", "POST", rec.srv.URL+"/labels").Timeout(5 * time.Second)).
		Step(ordo.Task("ship", "ship").After("create-label")).
		MustBuild()
	var shipIn json.RawMessage
	var fromCtx ordo.StepAttempt
	ship := func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		shipIn = req.Input
		fromCtx, _ = ordo.StepAttemptFromContext(ctx)
		return ordo.Result{}, nil
	}
	_, err := tt.Engine.Register(t.Context(), def, ordo.Handlers{"ship": ship})
	require.NoError(t, err)
	id := tt.Start("label", map[string]string{"orderId": "A-1"})
	tt.RunUntilIdle()
	inst := tt.RequireStatus(id, ordo.StatusCompleted)
	require.Equal(t, 2, inst.Step("create-label").Attempt, "the 503 was retried")
	require.JSONEq(t, `{"label":"LBL-1"}`, string(shipIn), "the response body is the step's output")
	require.Equal(t, ordo.StepAttempt{InstanceID: id, Workflow: "label", Step: "ship", Attempt: 1, IdempotencyKey: id + "/ship/1"}, fromCtx,
		"the handler's context carries its attempt")

	keys, bodies := rec.seen()
	require.Equal(t, []string{id + "/create-label/1", id + "/create-label/2"}, keys, "each attempt has its own key")
	require.JSONEq(t, `{"orderId":"A-1"}`, bodies[0], "the step input is the request body")
}
