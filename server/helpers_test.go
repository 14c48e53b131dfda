package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// Workflow definitions the tests deploy. Timer and http steps run inside
// the engine, so they need no handlers.
const (
	quickYAML = `workflow: quick
description: two short timers
steps:
  - id: first
    timer: {duration: 5ms}
  - id: second
    after: [first]
    timer: {duration: 5ms}
`
	// slowYAML waits an hour: its instances stay waiting until cancelled.
	slowYAML = `workflow: slow
businessKey: input.orderId
steps:
  - id: wait
    timer: {duration: 1h}
`
	// keyedYAML computes the idempotency key from the input.
	keyedYAML = `workflow: keyed
idempotencyKey: input.orderId
steps:
  - id: wait
    timer: {duration: 1h}
`
)

// testBundle is a started server on a fresh SQLite file.
type testBundle struct {
	eng    *ordo.Engine
	srv    *Server
	base   string
	client *ordoclient.Client
	doc    *openAPIDoc
}

// setup starts a server with opts (Engine and Addr are filled in) on a
// temporary SQLite file, and stops it when the test ends.
func setup(t testing.TB, opts *Options) *testBundle {
	t.Helper()
	return setupEngine(t, opts, &ordo.Config{})
}

// setupEngine is setup with an engine configured by cfg (its Logger and
// PollInterval are set here).
func setupEngine(t testing.TB, opts *Options, cfg *ordo.Config) *testBundle {
	t.Helper()
	ctx := context.Background()
	c := *cfg
	c.Logger, c.PollInterval = slog.New(slog.DiscardHandler), 50*time.Millisecond
	eng, err := ordo.Open(ctx, ordo.SQLite(filepath.Join(t.TempDir(), "ordo.db")), &c)
	require.NoError(t, err)
	if opts == nil {
		opts = &Options{}
	}
	o := *opts
	o.Engine = eng
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	o.Logger = slog.New(slog.DiscardHandler)
	srv, err := New(&o)
	require.NoError(t, err)
	require.NoError(t, srv.Start(ctx))
	t.Cleanup(func() {
		ctx := context.WithoutCancel(ctx)
		require.NoError(t, srv.Stop(ctx))
		require.NoError(t, eng.Close(ctx))
	})
	base := "http://" + srv.Addr()
	token := ""
	for tok, role := range o.Tokens {
		if role == RoleAdmin {
			token = tok
		}
	}
	client, err := ordoclient.New(base, &ordoclient.Options{Token: token})
	require.NoError(t, err)
	return &testBundle{eng: eng, srv: srv, base: base, client: client, doc: loadOpenAPI(t)}
}

// request is one HTTP request of a test.
type request struct {
	method      string
	path        string // with the query
	token       string // sent as a bearer token when set
	header      string // a raw Authorization header, when set
	contentType string
	body        string
}

// response is what the server answered.
type response struct {
	status int
	header http.Header
	body   []byte
}

// errorBody decodes an error answer.
func (r *response) errorBody(t *testing.T) *ordoclient.Error {
	t.Helper()
	var er ordoclient.ErrorResponse
	require.NoError(t, json.Unmarshal(r.body, &er), string(r.body))
	require.NotNil(t, er.Error, string(r.body))
	return er.Error
}

// decode decodes the answer into v.
func (r *response) decode(t testing.TB, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), string(r.body))
}

// do sends req and checks the answer against the OpenAPI document: its
// status is documented for the operation and its body matches the
// documented schema.
func (b *testBundle) do(t testing.TB, req request) *response {
	t.Helper()
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	hr, err := http.NewRequest(req.method, b.base+req.path, body)
	require.NoError(t, err)
	if req.contentType != "" {
		hr.Header.Set("Content-Type", req.contentType)
	}
	if req.token != "" {
		hr.Header.Set("Authorization", "Bearer "+req.token)
	}
	if req.header != "" {
		hr.Header.Set("Authorization", req.header)
	}
	resp, err := http.DefaultClient.Do(hr)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	res := &response{status: resp.StatusCode, header: resp.Header, body: data}
	b.doc.check(t, hr, res)
	return res
}

// deploy deploys a YAML definition through the API and returns its result.
func (b *testBundle) deploy(t testing.TB, token, yaml string) *ordoclient.DeployResult {
	t.Helper()
	res := b.do(t, request{method: "POST", path: "/api/v1/definitions", token: token, contentType: "application/yaml", body: yaml})
	require.Contains(t, []int{200, 201}, res.status, string(res.body))
	var out ordoclient.DeployResult
	res.decode(t, &out)
	return &out
}

// start starts an instance through the API and returns its id.
func (b *testBundle) start(t *testing.T, token, workflow, body string) string {
	t.Helper()
	res := b.do(t, request{method: "POST", path: "/api/v1/workflows/" + workflow + "/instances", token: token, contentType: "application/json", body: body})
	require.Equal(t, http.StatusCreated, res.status, string(res.body))
	var out ordoclient.StartResult
	res.decode(t, &out)
	require.NotEmpty(t, out.ID)
	return out.ID
}

// waitStatus polls an instance until it has one of statuses.
func (b *testBundle) waitStatus(t *testing.T, id string, statuses ...ordo.Status) *ordoclient.Instance {
	t.Helper()
	var inst *ordoclient.Instance
	require.Eventually(t, func() bool {
		var err error
		inst, err = b.client.Get(context.Background(), id)
		require.NoError(t, err)
		for _, s := range statuses {
			if inst.Status == s {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "instance %s never reached %v", id, statuses)
	return inst
}

// storeState is what the store holds, summed up: a refused request must
// leave it as it was.
type storeState struct {
	Instances   int
	JournalSeqs int64 // the sum of every instance's last sequence number
	Definitions map[string]int
}

func (b *testBundle) storeState(t testing.TB) storeState {
	t.Helper()
	ctx := context.Background()
	list, err := b.eng.List(ctx, &ordo.ListParams{Limit: 10000})
	require.NoError(t, err)
	st := storeState{Instances: len(list), Definitions: map[string]int{}}
	for _, inst := range list {
		st.JournalSeqs += inst.Seq
	}
	defs, err := b.eng.Definitions(ctx)
	require.NoError(t, err)
	for _, d := range defs {
		st.Definitions[d.Name] = d.Version
	}
	return st
}

// requireHealthy checks that the server still answers.
func (b *testBundle) requireHealthy(t *testing.T) {
	t.Helper()
	res := b.do(t, request{method: "GET", path: "/healthz"})
	require.Equal(t, http.StatusOK, res.status)
	res = b.do(t, request{method: "GET", path: "/readyz"})
	require.Equal(t, http.StatusOK, res.status)
}

// compactJSON returns data compacted, for comparisons.
func compactJSON(t *testing.T, data []byte) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Compact(&buf, data))
	return buf.String()
}
