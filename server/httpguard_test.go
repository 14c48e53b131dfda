package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordotest"
)

// countingServer is a real local HTTP server that counts its requests.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// call makes one GET through a client with policy p and returns its error.
func call(t *testing.T, p *HTTPPolicy, rawURL string) error {
	t.Helper()
	c, err := p.Client(0)
	require.NoError(t, err)
	resp, err := c.Get(rawURL)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

func requireRefused(t *testing.T, err error, reason string) {
	t.Helper()
	var hna *HostNotAllowedError
	require.ErrorAs(t, err, &hna)
	require.Contains(t, hna.Error(), reason)
	require.False(t, hna.Retryable())
	require.Equal(t, "host_not_allowed", hna.ErrorCode())
}

func TestHTTPPolicy(t *testing.T) {
	t.Parallel()
	srv, _ := countingServer(t)
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	port := u.Port()
	byName := "http://localhost:" + port // a name that resolves to loopback

	t.Run("DefaultRefusesLoopbackByAddressAndByName", func(t *testing.T) {
		t.Parallel()
		p := &HTTPPolicy{}
		requireRefused(t, call(t, p, srv.URL), "loopback addresses are refused")
		requireRefused(t, call(t, p, byName), "(127.0.0.1) is not allowed") // checked after DNS
	})

	t.Run("AllowLoopback", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, call(t, &HTTPPolicy{AllowLoopback: true}, srv.URL))
		require.NoError(t, call(t, &HTTPPolicy{AllowLoopback: true}, byName))
	})

	t.Run("AllowPrivate", func(t *testing.T) {
		t.Parallel()
		require.NoError(t, call(t, &HTTPPolicy{AllowPrivate: true}, srv.URL))
	})

	t.Run("AllowHosts", func(t *testing.T) {
		t.Parallel()
		// A host named exactly is let in, private or not.
		require.NoError(t, call(t, &HTTPPolicy{AllowHosts: []string{"LOCALHOST"}}, byName))
		require.NoError(t, call(t, &HTTPPolicy{AllowHosts: []string{"127.0.0.1:" + port}}, srv.URL))
		require.NoError(t, call(t, &HTTPPolicy{AllowHosts: []string{"127.0.0.0/8"}}, byName))
		// Anything else is refused.
		requireRefused(t, call(t, &HTTPPolicy{AllowHosts: []string{"api.example.com"}}, srv.URL), "not in http.allowHosts")
		requireRefused(t, call(t, &HTTPPolicy{AllowHosts: []string{"127.0.0.1:1"}}, srv.URL), "not in http.allowHosts")
		requireRefused(t, call(t, &HTTPPolicy{AllowHosts: []string{"10.0.0.0/8"}}, byName), "not in http.allowHosts")
		// A wildcard does not match its apex, and does not let private
		// addresses in.
		requireRefused(t, call(t, &HTTPPolicy{AllowHosts: []string{"*.localhost"}}, byName), "not in http.allowHosts")
		requireRefused(t, call(t, &HTTPPolicy{AllowHosts: []string{"*.0.0.1"}}, srv.URL), "loopback addresses are refused")
		require.NoError(t, call(t, &HTTPPolicy{AllowHosts: []string{"*.0.0.1"}, AllowLoopback: true}, srv.URL))
	})

	t.Run("Validate", func(t *testing.T) {
		t.Parallel()
		for _, bad := range []string{"", "a b", "host:notaport", "host:70000", "*", "*.", "user@host", "http://x"} {
			require.Error(t, (&HTTPPolicy{AllowHosts: []string{bad}}).Validate(), bad)
		}
		require.NoError(t, (&HTTPPolicy{AllowHosts: []string{"a.example.com", "*.example.org:443", "10.0.0.0/8", "[fd00::1]:80", "fd00::1", "10.1.2.3"}}).Validate())
	})

	t.Run("Addresses", func(t *testing.T) {
		t.Parallel()
		for addr, want := range map[string]string{
			"127.0.0.1": "loopback", "::1": "loopback", "64:ff9b::7f00:1": "loopback",
			"10.1.2.3": "private", "172.16.0.1": "private", "192.168.1.1": "private", "fd00::1": "private", "100.64.0.1": "private",
			"169.254.169.254": "link-local", "fe80::1": "link-local",
			"0.0.0.0": "unspecified", "::": "unspecified", "0.1.2.3": "unspecified",
			"239.1.1.1": "multicast", "224.0.0.1": "link-local", "ff02::1": "link-local", "255.255.255.255": "reserved",
			"8.8.8.8": "", "2001:4860:4860::8888": "", "93.184.216.34": "",
		} {
			require.Equal(t, want, specialAddress(netip.MustParseAddr(addr).Unmap()), addr)
		}
		require.Equal(t, "loopback", specialAddress(netip.MustParseAddr("::ffff:127.0.0.1").Unmap()))
	})
}

func TestHTTPPolicy_FailsStepsAndEffectsWithoutRetry(t *testing.T) {
	t.Parallel()
	srv, hits := countingServer(t)
	client, err := (&HTTPPolicy{}).Client(0)
	require.NoError(t, err)
	tt := ordotest.New(t, &ordotest.Options{Config: &ordo.Config{HTTPClient: client}})
	ctx := t.Context()

	probe := ordo.NewWorkflow("probe").OnFailure(ordo.FailureFail).
		Step(ordo.HTTPStep("scan", "GET", srv.URL+"/admin").Retry(ordo.RetryPolicy{MaxAttempts: 5})).
		MustBuild()
	_, err = tt.Engine.Deploy(ctx, probe)
	require.NoError(t, err)
	id := tt.Start("probe", nil)
	tt.RunUntilIdle()
	inst := tt.RequireStatus(id, ordo.StatusFailed)
	step := inst.Step("scan")
	require.Equal(t, 1, step.Attempt, "a refused call is not retried")
	require.Equal(t, "host_not_allowed", step.Error.Code)
	require.Contains(t, step.Error.Message, "loopback addresses are refused")

	effect := ordo.NewWorkflow("probe-effect").OnFailure(ordo.FailureFail).
		Step(ordo.Task("send", "send").WaitEffects()).
		MustBuild()
	send := func(context.Context, *ordo.StepRequest) (ordo.Result, error) {
		return ordo.Result{SideEffects: []ordo.SideEffect{ordo.HTTPEffect("POST", srv.URL, nil)}}, nil
	}
	_, err = tt.Engine.Register(ctx, effect, ordo.Handlers{"send": send})
	require.NoError(t, err)
	id = tt.Start("probe-effect", nil)
	tt.RunUntilIdle()
	inst = tt.RequireStatus(id, ordo.StatusFailed)
	require.Equal(t, "host_not_allowed", inst.Error.Code)
	require.Zero(t, tt.Engine.Stats().EffectsRun-1, "the effect was tried once")

	require.Zero(t, hits.Load(), "nothing reached the server")
}
