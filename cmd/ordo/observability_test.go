package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lockedBuffer collects a process's stderr.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startLogged starts `ordo server` with args, keeping its stderr (the
// logs), and returns its URL and banner once it listens.
func startLogged(t *testing.T, bin string, env []string, args ...string) (url, banner string, stderr *lockedBuffer, stop func()) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cleanEnv(), env...)
	stderr = &lockedBuffer{}
	cmd.Stderr = stderr
	pipe, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var out strings.Builder
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
			url = u
			break
		}
	}
	require.NotEmpty(t, url, "ordo server never listened; stdout:\n%s\nstderr:\n%s", out.String(), stderr.String())
	go io.Copy(io.Discard, pipe)
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	}
	t.Cleanup(stop)
	return url, out.String(), stderr, stop
}

func TestServerBinary_Observability(t *testing.T) {
	t.Parallel()
	bin := ordoBinary(t)
	var hits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte(`{"label":"L-1"}`))
	}))
	t.Cleanup(target.Close)

	dir := t.TempDir()
	db := filepath.Join(dir, "ordo.db")
	defFile := filepath.Join(dir, "probe.yaml")
	require.NoError(t, os.WriteFile(defFile, []byte("workflow: probe\nonFailure: fail\nsteps:\n  - id: call\n    http: {method: POST, url: \""+target.URL+"/labels\"}\n"), 0o600))
	env := []string{"ORDO_TOKENS=a=admin,r=reader"}
	admin := []string{"--token", "a"}

	// run starts an instance of probe and returns it once it has ended.
	run := func(url string) map[string]any {
		t.Helper()
		out, errOut, code := ordo(t, bin, nil, append([]string{"start", "probe", "-o", "json", "--server", url}, admin...)...)
		require.Equal(t, 0, code, errOut)
		var started struct{ ID string }
		require.NoError(t, json.Unmarshal([]byte(out), &started), out)
		var inst map[string]any
		require.Eventually(t, func() bool {
			out, errOut, code := ordo(t, bin, nil, append([]string{"get", started.ID, "-o", "json", "--server", url}, admin...)...)
			require.Equal(t, 0, code, errOut)
			inst = nil
			require.NoError(t, json.Unmarshal([]byte(out), &inst), out)
			return inst["status"] == "failed" || inst["status"] == "completed"
		}, 20*time.Second, 50*time.Millisecond)
		return inst
	}

	// By default, an http step may not call a loopback address.
	url, banner, logs, stop := startLogged(t, bin, env, "server", "--db", db, "--addr", "127.0.0.1:0", "--log-format", "json")
	require.Contains(t, banner, "/metrics (Prometheus)")
	require.Contains(t, banner, "steps and effects may call public addresses only")
	_, errOut, code := ordo(t, bin, nil, append([]string{"deploy", defFile, "--server", url}, admin...)...)
	require.Equal(t, 0, code, errOut)
	inst := run(url)
	require.Equal(t, "failed", inst["status"])
	step := inst["steps"].([]any)[0].(map[string]any)
	require.Equal(t, "host_not_allowed", step["error"].(map[string]any)["code"], step)
	require.EqualValues(t, 1, step["attempt"], "not retried")
	require.Zero(t, hits.Load(), "the call never reached the target")

	// The metrics say so, to a reader.
	req, err := http.NewRequest("GET", url+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer r")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	for _, line := range []string{
		`ordo_instances_started_total{workflow="probe"} 1`,
		`ordo_instances_ended_total{status="failed",workflow="probe"} 1`,
		`ordo_step_failures_total{code="host_not_allowed",step="call",workflow="probe"} 1`,
	} {
		require.Contains(t, string(body), line+"\n")
	}

	// One JSON log line per request, with its route and the instance.
	stop()
	var startLine map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" && m["route"] == "POST /api/v1/workflows/{name}/instances" {
			startLine = m
		}
	}
	require.NotNil(t, startLine, "no request line for the start in:\n%s", logs.String())
	require.EqualValues(t, 201, startLine["status"])
	require.Equal(t, inst["id"], startLine["ordo.instance.id"])
	require.NotEmpty(t, startLine["request_id"])

	// Named in http.allowHosts (here through the environment), the host may
	// be called.
	url, banner, _, _ = startLogged(t, bin, append(env, "ORDO_HTTP_ALLOW_HOSTS=127.0.0.1"), "server", "--db", db, "--addr", "127.0.0.1:0")
	require.Contains(t, banner, "steps and effects may call only 127.0.0.1")
	inst = run(url)
	require.Equal(t, "completed", inst["status"], inst)
	require.EqualValues(t, 1, hits.Load())
}
