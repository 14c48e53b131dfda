package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
)

func TestServer_Definitions(t *testing.T) {
	t.Parallel()

	t.Run("DeployYAMLThenSameAgain", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		res := b.do(t, request{method: "POST", path: "/api/v1/definitions", contentType: "application/yaml", body: quickYAML})
		require.Equal(t, http.StatusCreated, res.status, string(res.body))
		require.Equal(t, "/api/v1/definitions/quick/versions/1", res.header.Get("Location"))
		var first ordoclient.DeployResult
		res.decode(t, &first)
		require.Equal(t, ordoclient.DeployResult{Name: "quick", Version: 1, Hash: first.Hash, Created: true}, first)
		require.Len(t, first.Hash, 64)

		// The same definition again, even written differently, stores
		// nothing new.
		res = b.do(t, request{method: "POST", path: "/api/v1/definitions", contentType: "text/yaml; charset=utf-8", body: "# a comment\n" + quickYAML})
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		var again ordoclient.DeployResult
		res.decode(t, &again)
		require.Equal(t, ordoclient.DeployResult{Name: "quick", Version: 1, Hash: first.Hash, Created: false}, again)
	})

	t.Run("ConcurrentDeploysCreateOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				res := b.do(t, request{method: "POST", path: "/api/v1/definitions", contentType: "application/yaml", body: quickYAML})
				mu.Lock()
				codes[res.status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		require.Equal(t, map[int]int{http.StatusCreated: 1, http.StatusOK: 7}, codes, "one deploy stores the version, the others find it")
	})

	t.Run("DeployJSONIsANewVersion", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		b.deploy(t, "", quickYAML)
		def := `{"workflow":"quick","steps":[{"id":"only","timer":{"duration":"1ms"}}]}`
		res := b.do(t, request{method: "POST", path: "/api/v1/definitions", contentType: "application/json", body: def})
		require.Equal(t, http.StatusCreated, res.status, string(res.body))
		var out ordoclient.DeployResult
		res.decode(t, &out)
		require.Equal(t, 2, out.Version)
		require.True(t, out.Created)

		// No Content-Type is read as YAML (JSON is YAML too).
		res = b.do(t, request{method: "POST", path: "/api/v1/definitions", body: def})
		require.Equal(t, http.StatusOK, res.status, string(res.body))
	})

	t.Run("ListGetVersion", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		v1 := b.deploy(t, "", quickYAML)
		v2 := b.deploy(t, "", strings.Replace(quickYAML, "5ms", "6ms", 1))
		b.deploy(t, "", slowYAML)
		require.Equal(t, 2, v2.Version)

		res := b.do(t, request{method: "GET", path: "/api/v1/definitions"})
		require.Equal(t, http.StatusOK, res.status)
		var list ordoclient.DefinitionList
		res.decode(t, &list)
		require.Len(t, list.Definitions, 2)
		byName := map[string]ordoclient.Definition{}
		for _, d := range list.Definitions {
			byName[d.Name] = d
		}
		require.Equal(t, 2, byName["quick"].Version, "the list has the latest version")
		require.Equal(t, v2.Hash, byName["quick"].Hash)
		require.Equal(t, 1, byName["slow"].Version)

		res = b.do(t, request{method: "GET", path: "/api/v1/definitions/quick"})
		require.Equal(t, http.StatusOK, res.status)
		var latest ordoclient.Definition
		res.decode(t, &latest)
		require.Equal(t, 2, latest.Version)
		require.False(t, latest.CreatedAt.IsZero())
		require.Contains(t, string(latest.Definition), `"6ms"`)

		res = b.do(t, request{method: "GET", path: "/api/v1/definitions/quick/versions/1"})
		require.Equal(t, http.StatusOK, res.status)
		var old ordoclient.Definition
		res.decode(t, &old)
		require.Equal(t, 1, old.Version)
		require.Equal(t, v1.Hash, old.Hash)
		// The canonical JSON deploys as the same definition.
		again := b.do(t, request{method: "POST", path: "/api/v1/definitions", contentType: "application/json", body: string(old.Definition)})
		var dr ordoclient.DeployResult
		again.decode(t, &dr)
		require.Equal(t, v1.Hash, dr.Hash)
	})
}

func TestServer_Instances(t *testing.T) {
	t.Parallel()

	t.Run("StartGetJournal", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		b.deploy(t, "", quickYAML)
		res := b.do(t, request{method: "POST", path: "/api/v1/workflows/quick/instances", contentType: "application/json",
			body: `{"input":{"orderId":"o-1","amount":12.5},"businessKey":"B-1"}`})
		require.Equal(t, http.StatusCreated, res.status, string(res.body))
		var started ordoclient.StartResult
		res.decode(t, &started)
		require.Equal(t, "/api/v1/instances/"+started.ID, res.header.Get("Location"))
		require.False(t, started.Existing)

		inst := b.waitStatus(t, started.ID, ordo.StatusCompleted)
		res = b.do(t, request{method: "GET", path: "/api/v1/instances/" + started.ID})
		require.Equal(t, http.StatusOK, res.status)
		var raw map[string]any
		res.decode(t, &raw)
		for _, k := range []string{"id", "workflow", "version", "status", "businessKey", "input", "state", "output", "error", "steps", "createdAt", "updatedAt", "finishedAt"} {
			require.Contains(t, raw, k)
		}
		require.Equal(t, "quick", inst.Workflow)
		require.Equal(t, 1, inst.Version)
		require.Equal(t, "B-1", inst.BusinessKey)
		require.JSONEq(t, `{"orderId":"o-1","amount":12.5}`, string(inst.Input))
		require.NotNil(t, inst.FinishedAt)
		require.Len(t, inst.Steps, 2)
		for i, id := range []string{"first", "second"} {
			require.Equal(t, id, inst.Steps[i].ID)
			require.Equal(t, ordo.StepCompleted, inst.Steps[i].Status)
			require.Equal(t, 1, inst.Steps[i].Attempt)
			require.NotNil(t, inst.Steps[i].FinishedAt)
		}

		res = b.do(t, request{method: "GET", path: "/api/v1/instances/" + started.ID + "/journal"})
		require.Equal(t, http.StatusOK, res.status)
		var j ordoclient.Journal
		res.decode(t, &j)
		require.NotEmpty(t, j.Events)
		require.Equal(t, "workflow.started", j.Events[0].Type)
		require.Equal(t, "workflow.completed", j.Events[len(j.Events)-1].Type)
		for i, e := range j.Events {
			require.EqualValues(t, i+1, e.Seq)
			require.False(t, e.Time.IsZero())
		}
	})

	t.Run("StartEmptyBodyAndVersion", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		b.deploy(t, "", quickYAML)
		b.deploy(t, "", strings.Replace(quickYAML, "5ms", "6ms", 1))
		id := b.start(t, "", "quick", "")
		inst := b.waitStatus(t, id, ordo.StatusCompleted)
		require.Equal(t, 2, inst.Version)
		require.JSONEq(t, `{}`, string(inst.Input))

		id = b.start(t, "", "quick", `{"version":1}`)
		inst = b.waitStatus(t, id, ordo.StatusCompleted)
		require.Equal(t, 1, inst.Version)
	})

	t.Run("IdempotencyKey", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		b.deploy(t, "", slowYAML)
		first := b.start(t, "", "slow", `{"input":{"orderId":"o-1"},"idempotencyKey":"k-1"}`)
		res := b.do(t, request{method: "POST", path: "/api/v1/workflows/slow/instances", contentType: "application/json",
			body: `{"input":{"orderId":"o-2"},"idempotencyKey":"k-1"}`})
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		var again ordoclient.StartResult
		res.decode(t, &again)
		require.Equal(t, ordoclient.StartResult{ID: first, Existing: true}, again)
		require.Equal(t, 1, b.storeState(t).Instances)
	})

	t.Run("IdempotencyKeyFromDefinition", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		b.deploy(t, "", keyedYAML)
		first := b.start(t, "", "keyed", `{"input":{"orderId":"o-1"}}`)
		// The key is computed by the definition: the second start finds the
		// first instance and says so.
		res := b.do(t, request{method: "POST", path: "/api/v1/workflows/keyed/instances", contentType: "application/json", body: `{"input":{"orderId":"o-1"}}`})
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		var again ordoclient.StartResult
		res.decode(t, &again)
		require.Equal(t, ordoclient.StartResult{ID: first, Existing: true}, again)
		require.Equal(t, 1, b.storeState(t).Instances)

		// Concurrent first starts of one new key: one is created (201), the
		// others find it (200).
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				res := b.do(t, request{method: "POST", path: "/api/v1/workflows/keyed/instances", contentType: "application/json", body: `{"input":{"orderId":"o-2"}}`})
				mu.Lock()
				codes[res.status]++
				mu.Unlock()
			})
		}
		wg.Wait()
		require.Equal(t, map[int]int{http.StatusCreated: 1, http.StatusOK: 7}, codes)
	})

	t.Run("ListFiltersAndPages", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		b.deploy(t, "", slowYAML)
		b.deploy(t, "", quickYAML)
		var slow []string
		for _, k := range []string{"a", "b", "c", "d", "e"} {
			slow = append(slow, b.start(t, "", "slow", `{"input":{"orderId":"`+k+`"}}`))
		}
		quick := b.start(t, "", "quick", `{}`)
		b.waitStatus(t, quick, ordo.StatusCompleted)

		list := func(query string) ordoclient.InstanceList {
			t.Helper()
			res := b.do(t, request{method: "GET", path: "/api/v1/instances" + query})
			require.Equal(t, http.StatusOK, res.status, string(res.body))
			var l ordoclient.InstanceList
			res.decode(t, &l)
			return l
		}
		ids := func(l ordoclient.InstanceList) []string {
			var out []string
			for _, i := range l.Instances {
				out = append(out, i.ID)
			}
			return out
		}

		all := list("")
		require.Len(t, all.Instances, 6)
		require.Empty(t, all.Next)
		require.Equal(t, quick, all.Instances[0].ID, "newest first")

		require.Equal(t, []string{quick}, ids(list("?status=completed")))
		require.Len(t, list("?status=completed&status=running&status=waiting").Instances, 6)
		require.Len(t, list("?workflow=slow").Instances, 5)
		require.Equal(t, []string{slow[2]}, ids(list("?businessKey=c")))
		require.Empty(t, list("?createdAfter=2999-01-01T00:00:00Z").Instances)
		require.Len(t, list("?createdBefore=2999-01-01T00:00:00Z").Instances, 6)
		require.Len(t, list("?createdAfter=1000-01-01T00:00:00Z").Instances, 6)
		require.Empty(t, list("?createdBefore=1000-01-01T00:00:00Z").Instances)
		require.Len(t, list("?createdAfter=2000-01-01T00:00:00%2B02:00&createdBefore=2999-01-01T00:00:00Z&workflow=slow").Instances, 5)

		// Pages of two, following next, give every slow instance once.
		var paged []string
		cursor := ""
		for range 10 {
			q := "?workflow=slow&limit=2"
			if cursor != "" {
				q += "&before=" + cursor
			}
			page := list(q)
			paged = append(paged, ids(page)...)
			if page.Next == "" {
				break
			}
			require.Len(t, page.Instances, 2)
			cursor = page.Next
		}
		require.Equal(t, []string{slow[4], slow[3], slow[2], slow[1], slow[0]}, paged)
	})

	t.Run("Cancel", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		b.deploy(t, "", slowYAML)
		id := b.start(t, "", "slow", `{"input":{"orderId":"o-1"}}`)
		res := b.do(t, request{method: "POST", path: "/api/v1/instances/" + id + "/cancel", contentType: "application/json", body: `{"reason":"customer called"}`})
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		var inst ordoclient.Instance
		res.decode(t, &inst)
		require.Equal(t, ordo.StatusCancelled, inst.Status)
		require.NotNil(t, inst.FinishedAt)

		journal, err := b.client.Journal(context.Background(), id)
		require.NoError(t, err)
		require.Contains(t, string(journal[len(journal)-1].Data), "customer called")
	})

	t.Run("ResubmitFromReview", func(t *testing.T) {
		t.Parallel()
		// An http step against a service that fails once: the instance is
		// parked for review, and a resubmit completes it.
		var calls atomic.Int32
		svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"label":"L-1"}`))
		}))
		t.Cleanup(svc.Close)
		b := setup(t, nil)
		b.deploy(t, "", `workflow: flaky
onFailure: review
retry: {maxAttempts: 1}
steps:
  - id: call
    http: {method: POST, url: "`+svc.URL+`"}
`)
		id := b.start(t, "", "flaky", `{"input":{"orderId":"o-1"}}`)
		inst := b.waitStatus(t, id, ordo.StatusReview)
		require.NotNil(t, inst.Steps[0].Error)

		res := b.do(t, request{method: "POST", path: "/api/v1/instances/" + id + "/resubmit", contentType: "application/json",
			body: `{"from":"call","input":{"orderId":"o-1","retried":true},"reason":"service is back"}`})
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		inst = b.waitStatus(t, id, ordo.StatusCompleted)
		require.JSONEq(t, `{"orderId":"o-1","retried":true}`, string(inst.Input))
		require.JSONEq(t, `{"label":"L-1"}`, string(inst.Steps[0].Output))
		require.Equal(t, 2, inst.Steps[0].Attempt)
	})
}

func TestServer_Health(t *testing.T) {
	t.Parallel()

	t.Run("HealthAndReady", func(t *testing.T) {
		t.Parallel()
		b := setup(t, &Options{Tokens: map[string]Role{"a": RoleAdmin}})
		for _, p := range []string{"/healthz", "/readyz"} {
			res := b.do(t, request{method: "GET", path: p})
			require.Equal(t, http.StatusOK, res.status, p)
		}
	})

	t.Run("NotReadyWhileStopping", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		b.srv.stopping.Store(true)
		res := b.do(t, request{method: "GET", path: "/readyz"})
		require.Equal(t, http.StatusServiceUnavailable, res.status)
		require.Equal(t, ordoclient.CodeUnavailable, res.errorBody(t).Code)
		res = b.do(t, request{method: "GET", path: "/healthz"})
		require.Equal(t, http.StatusOK, res.status)
		b.srv.stopping.Store(false)
	})
}

func TestNew(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng, err := ordo.Open(ctx, ordo.SQLite(filepath.Join(t.TempDir(), "ordo.db")), &ordo.Config{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, eng.Close(context.WithoutCancel(ctx))) })

	for _, tc := range []struct {
		name    string
		opts    *Options
		wantErr string
	}{
		{"NilOptions", nil, "Engine is required"},
		{"NoEngine", &Options{Addr: "127.0.0.1:0"}, "Engine is required"},
		{"OpenOnAllInterfaces", &Options{Engine: eng, Addr: ":0"}, "refusing to serve"},
		{"OpenOnPublicIP", &Options{Engine: eng, Addr: "0.0.0.0:7070"}, "refusing to serve"},
		{"BadAddr", &Options{Engine: eng, Addr: "nope"}, "Options.Addr"},
		{"BadRole", &Options{Engine: eng, Addr: ":0", Tokens: map[string]Role{"t": "root"}}, `role "root"`},
		{"EmptyToken", &Options{Engine: eng, Addr: ":0", Tokens: map[string]Role{"": RoleAdmin}}, "empty token"},
		{"TaskRolesUnknownToken", &Options{Engine: eng, Addr: ":0", Tokens: map[string]Role{"t": RoleOperator}, TaskRoles: map[string][]string{"u": {"approver"}}}, "not in Options.Tokens"},
		{"TaskRolesEmptyRole", &Options{Engine: eng, Addr: ":0", Tokens: map[string]Role{"t": RoleOperator}, TaskRoles: map[string][]string{"t": {""}}}, "empty role"},
		{"NegativeBody", &Options{Engine: eng, MaxBodyBytes: -1}, "MaxBodyBytes"},
		{"OpenOnLoopback", &Options{Engine: eng, Addr: "127.0.0.1:0"}, ""},
		{"OpenOnLocalhost", &Options{Engine: eng, Addr: "localhost:0"}, ""},
		{"OpenOnIPv6Loopback", &Options{Engine: eng, Addr: "[::1]:0"}, ""},
		{"DefaultAddr", &Options{Engine: eng}, ""},
		{"InsecureOnAllInterfaces", &Options{Engine: eng, Addr: ":0", Insecure: true}, ""},
		{"TokensOnAllInterfaces", &Options{Engine: eng, Addr: ":0", Tokens: map[string]Role{"t": RoleReader}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, err := New(tc.opts)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.Nil(t, srv)
				return
			}
			require.NoError(t, err)
			require.NotNil(t, srv.Handler())
		})
	}
}

func TestServer_Lifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng, err := ordo.Open(ctx, ordo.SQLite(filepath.Join(t.TempDir(), "ordo.db")), &ordo.Config{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, eng.Close(context.WithoutCancel(ctx))) })

	t.Run("StopBeforeStartAndTwice", func(t *testing.T) {
		t.Parallel()
		srv, err := New(&Options{Engine: eng, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		require.Empty(t, srv.Addr())
		require.NoError(t, srv.Stop(ctx))
		require.ErrorContains(t, srv.Start(ctx), "after Stop")
	})

	t.Run("StartStop", func(t *testing.T) {
		t.Parallel()
		srv, err := New(&Options{Engine: eng, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		require.NoError(t, srv.Start(ctx))
		require.ErrorContains(t, srv.Start(ctx), "already started")
		addr := srv.Addr()
		require.NotEmpty(t, addr)
		resp, err := http.Get("http://" + addr + "/healthz")
		require.NoError(t, err)
		resp.Body.Close()
		require.NoError(t, srv.Stop(ctx))
		require.NoError(t, srv.Stop(ctx))
		_, err = http.Get("http://" + addr + "/healthz")
		require.Error(t, err, "the listener is closed")
	})

	t.Run("AddrInUse", func(t *testing.T) {
		t.Parallel()
		first, err := New(&Options{Engine: eng, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		require.NoError(t, first.Start(ctx))
		t.Cleanup(func() { require.NoError(t, first.Stop(ctx)) })
		second, err := New(&Options{Engine: eng, Addr: first.Addr(), Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		require.ErrorContains(t, second.Start(ctx), "listening on")
	})

	t.Run("HandlerMounted", func(t *testing.T) {
		t.Parallel()
		srv, err := New(&Options{Engine: eng, Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		mux := http.NewServeMux()
		mux.Handle("/ordo/", http.StripPrefix("/ordo", srv.Handler()))
		hs := httptest.NewServer(mux)
		t.Cleanup(hs.Close)
		resp, err := http.Get(hs.URL + "/ordo/api/v1/definitions")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var list ordoclient.DefinitionList
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&list))
	})
}
