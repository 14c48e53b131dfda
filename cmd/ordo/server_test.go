package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// e2eDefinition has only timer steps: server mode runs them without any
// handler or worker.
const e2eDefinition = `workflow: e2e
businessKey: input.orderId
steps:
  - id: pay
    timer: {duration: 5ms}
  - id: pick
    after: [pay]
    timer: {duration: 5ms}
  - id: ship
    after: [pay]
    timer: {duration: 5ms}
  - id: notify
    after: [pick, ship]
    timer: {duration: 5ms}
`

const slowDefinition = `workflow: slow
steps:
  - id: wait
    timer: {duration: 1h}
`

// serverProcess is a running `ordo server` or `ordo dev`.
type serverProcess struct {
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	out  bytes.Buffer // everything it printed on stdout
	done chan struct{}
}

func (p *serverProcess) stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startServer starts the binary with args and waits for its
// "listening on URL" line.
func startServer(t *testing.T, bin string, env []string, args ...string) *serverProcess {
	t.Helper()
	p := &serverProcess{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.Stderr = io.Discard
	pipe, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	urls := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			p.mu.Unlock()
			if u, ok := strings.CutPrefix(line, "listening on "); ok {
				urls <- u
			}
		}
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	select {
	case p.url = <-urls:
	case <-time.After(30 * time.Second):
		t.Fatalf("ordo %v never said where it listens; it printed:\n%s", args, p.stdout())
	}
	require.True(t, strings.HasPrefix(p.url, "http://127.0.0.1:"), p.url)
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *serverProcess) stop(t *testing.T) int {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	<-p.done
	exited := make(chan error, 1)
	go func() { exited <- p.cmd.Wait() }()
	select {
	case err := <-exited:
		return exitCode(err)
	case <-time.After(30 * time.Second):
		t.Fatal("ordo did not stop within 30s of SIGTERM")
	}
	return -1
}

// cleanEnv is the environment without the ORDO_ variables of whoever runs
// the tests.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORDO_") {
			env = append(env, kv)
		}
	}
	return env
}

// ordo runs a client verb and returns its stdout, stderr and exit code.
func ordo(t *testing.T, bin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), exitCode(err)
}

func TestServerBinary(t *testing.T) {
	t.Parallel()
	bin := ordoBinary(t)

	t.Run("EndToEnd", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		defFile := filepath.Join(dir, "e2e.yaml")
		require.NoError(t, os.WriteFile(defFile, []byte(e2eDefinition), 0o600))
		slowFile := filepath.Join(dir, "slow.json")
		require.NoError(t, os.WriteFile(slowFile, []byte(`{"workflow":"slow","steps":[{"id":"wait","timer":{"duration":"1h"}}]}`), 0o600))
		badFile := filepath.Join(dir, "bad.yaml")
		require.NoError(t, os.WriteFile(badFile, []byte("workflow: bad\nsteps:\n  - id: a\n    after: [nowhere]\n    timer: {duration: 5ms}\n"), 0o600))

		srv := startServer(t, bin, []string{"ORDO_TOKENS=tok-admin=admin, tok-op=operator,tok-read=reader"},
			"server", "--db", filepath.Join(dir, "ordo.db"), "--addr", "127.0.0.1:0")
		require.Contains(t, srv.stdout(), "bearer tokens (1 admin, 1 operator, 1 reader)")
		require.NotContains(t, srv.stdout(), "tok-admin", "tokens are never printed")
		admin := []string{"--server", srv.url, "--token", "tok-admin"}
		op := []string{"--server", srv.url, "--token", "tok-op"}
		read := []string{"ORDO_SERVER=" + srv.url, "ORDO_TOKEN=tok-read"} // through the environment

		// Deploy, then the same again.
		out, errOut, code := ordo(t, bin, nil, append([]string{"deploy", defFile}, admin...)...)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "deployed e2e version 1")
		out, errOut, code = ordo(t, bin, nil, append([]string{"deploy", defFile, "-o", "json"}, admin...)...)
		require.Equal(t, 0, code, errOut)
		var dep map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &dep), out)
		require.Equal(t, map[string]any{"name": "e2e", "version": 1.0, "hash": dep["hash"], "created": false}, dep)
		_, errOut, code = ordo(t, bin, nil, append([]string{"deploy", slowFile}, admin...)...)
		require.Equal(t, 0, code, errOut)

		out, errOut, code = ordo(t, bin, read, "definitions")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "e2e")
		require.Contains(t, out, "slow")

		// Start, and poll get until it completes.
		out, errOut, code = ordo(t, bin, nil, append([]string{"start", "e2e", "--input", `{"orderId":"o-1"}`, "-o", "json"}, op...)...)
		require.Equal(t, 0, code, errOut)
		var started struct{ ID string }
		require.NoError(t, json.Unmarshal([]byte(out), &started), out)
		require.NotEmpty(t, started.ID)

		var inst map[string]any
		require.Eventually(t, func() bool {
			out, errOut, code := ordo(t, bin, read, "get", started.ID, "-o", "json")
			require.Equal(t, 0, code, errOut)
			inst = nil
			require.NoError(t, json.Unmarshal([]byte(out), &inst), out)
			return inst["status"] == "completed"
		}, 20*time.Second, 50*time.Millisecond)
		for _, k := range []string{"id", "workflow", "version", "status", "state", "steps"} {
			require.Contains(t, inst, k)
		}
		require.Equal(t, started.ID, inst["id"])
		require.Equal(t, "e2e", inst["workflow"])
		require.EqualValues(t, 1, inst["version"])
		steps := inst["steps"].([]any)
		require.Len(t, steps, 4)
		for _, s := range steps {
			require.Equal(t, "completed", s.(map[string]any)["status"])
		}

		out, errOut, code = ordo(t, bin, read, "get", started.ID)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "completed")
		require.Contains(t, out, "notify")

		// Journal.
		out, errOut, code = ordo(t, bin, read, "journal", started.ID, "-o", "json")
		require.Equal(t, 0, code, errOut)
		var journal struct {
			Events []struct {
				Seq  int
				Type string
			}
		}
		require.NoError(t, json.Unmarshal([]byte(out), &journal), out)
		require.Equal(t, "workflow.started", journal.Events[0].Type)
		require.Equal(t, "workflow.completed", journal.Events[len(journal.Events)-1].Type)
		out, _, code = ordo(t, bin, read, "journal", started.ID)
		require.Equal(t, 0, code)
		require.Contains(t, out, "step.completed")

		// A second instance, waiting, then cancelled; list sees both.
		out, errOut, code = ordo(t, bin, nil, append([]string{"start", "slow", "--business-key", "B-7"}, op...)...)
		require.Equal(t, 0, code, errOut)
		slowID := strings.TrimSpace(out)
		out, errOut, code = ordo(t, bin, read, "list", "--workflow", "e2e", "--status", "completed", "-o", "json")
		require.Equal(t, 0, code, errOut)
		var list struct {
			Instances []struct{ ID, Status string }
			Next      string
		}
		require.NoError(t, json.Unmarshal([]byte(out), &list), out)
		require.Len(t, list.Instances, 1)
		require.Equal(t, started.ID, list.Instances[0].ID)
		out, errOut, code = ordo(t, bin, read, "list", "--limit", "1")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, slowID)
		require.Contains(t, out, "B-7")
		require.Contains(t, out, "--before "+slowID)

		out, errOut, code = ordo(t, bin, nil, append([]string{"cancel", slowID, "--reason", "test"}, op...)...)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "cancelled")
		// A cancelled instance cannot be resubmitted: the API says 409.
		_, errOut, code = ordo(t, bin, nil, append([]string{"resubmit", slowID, "--reason", "again"}, op...)...)
		require.Equal(t, 1, code, errOut)
		require.Contains(t, errOut, "cannot resubmit")

		// A receive step takes a message sent with ordo send.
		recvFile := filepath.Join(dir, "recv.yaml")
		require.NoError(t, os.WriteFile(recvFile, []byte("workflow: recv\nsteps:\n  - id: wait\n    receive: {message: Paid, correlate: input.orderId}\n"), 0o600))
		_, errOut, code = ordo(t, bin, nil, append([]string{"deploy", recvFile}, admin...)...)
		require.Equal(t, 0, code, errOut)
		out, errOut, code = ordo(t, bin, nil, append([]string{"send", "Paid", "--key", "o-9", "--id", "pay-1", "--payload", `{"amount":12}`}, op...)...)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, "kept", "nobody waits yet")
		out, errOut, code = ordo(t, bin, nil, append([]string{"start", "recv", "--input", `{"orderId":"o-9"}`}, op...)...)
		require.Equal(t, 0, code, errOut)
		recvID := strings.TrimSpace(out)
		require.Eventually(t, func() bool {
			out, _, _ := ordo(t, bin, read, "get", recvID, "-o", "json")
			return strings.Contains(out, `"status": "completed"`) || strings.Contains(out, `"status":"completed"`)
		}, 20*time.Second, 50*time.Millisecond, "the kept message completes the receive step")
		out, errOut, code = ordo(t, bin, nil, append([]string{"send", "Paid", "--key", "o-9", "--id", "pay-1", "-o", "json"}, op...)...)
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, `"duplicate": true`)
		_, _, code = ordo(t, bin, read, "send", "Paid", "--key", "o-9")
		require.Equal(t, 4, code, "a reader may not send")

		// Exit code 3: not found.
		for _, args := range [][]string{
			{"get", "no-such-id"},
			{"journal", "no-such-id"},
			{"definitions", "no-such-workflow"},
		} {
			_, errOut, code := ordo(t, bin, read, args...)
			require.Equal(t, 3, code, "%v: %s", args, errOut)
			require.Contains(t, errOut, "ordo:")
		}
		_, errOut, code = ordo(t, bin, nil, append([]string{"start", "no-such-workflow"}, op...)...)
		require.Equal(t, 3, code, errOut)

		// Exit code 4: no token, unknown token, a role that may not.
		for _, args := range [][]string{
			{"list", "--server", srv.url},
			{"get", started.ID, "--server", srv.url, "--token", "nope"},
			{"deploy", defFile, "--server", srv.url, "--token", "tok-op"},
			{"start", "e2e", "--server", srv.url, "--token", "tok-read"},
		} {
			_, errOut, code := ordo(t, bin, nil, args...)
			require.Equal(t, 4, code, "%v: %s", args, errOut)
		}

		// Exit code 2: the command line is wrong; nothing is sent.
		for _, args := range [][]string{
			{"start"},
			{"start", "e2e", "--input", "{not json"},
			{"get", "a", "b"},
			{"list", "--status", "sleeping"},
			{"list", "--created-after", "yesterday"},
			{"list", "-o", "yaml"},
			{"deploy", filepath.Join(dir, "missing.yaml")},
			{"get", "x", "--server", "127.0.0.1:7070"},
		} {
			_, errOut, code := ordo(t, bin, read, args...)
			require.Equal(t, 2, code, "%v: %s", args, errOut)
		}

		// Exit code 1: the server refused a definition, with the problem's line.
		_, errOut, code = ordo(t, bin, nil, append([]string{"deploy", badFile}, admin...)...)
		require.Equal(t, 1, code, errOut)
		require.Contains(t, errOut, "line 4:")
		require.Contains(t, errOut, "nowhere")

		require.Equal(t, 0, srv.stop(t), srv.stdout())
		require.Contains(t, srv.stdout(), "stopped")

		// The server is gone: a client verb fails (1) and says where it looked.
		_, errOut, code = ordo(t, bin, read, "list")
		require.Equal(t, 1, code, errOut)
		require.Contains(t, errOut, "is the server running")
	})

	t.Run("Dev", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		srv := startServer(t, bin, nil, "dev", "--db", filepath.Join(dir, "dev.db"), "--addr", "127.0.0.1:0")
		require.Contains(t, srv.stdout(), "deployed  order-fulfilment v1")
		require.Contains(t, srv.stdout(), "steps and effects may call public and loopback addresses (ordo dev allows loopback")
		out, errOut, code := ordo(t, bin, []string{"ORDO_SERVER=" + srv.url}, "definitions", "-o", "json")
		require.Equal(t, 0, code, errOut)
		require.Contains(t, out, `"order-fulfilment"`)
		require.Equal(t, 0, srv.stop(t), srv.stdout())
	})

	t.Run("ServerConfig", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		db := filepath.Join(dir, "ordo.db")
		good := filepath.Join(dir, "good.yaml")
		require.NoError(t, os.WriteFile(good, []byte("addr: 0.0.0.0:7070\ntokens:\n  s3cret: admin\n"), 0o600))
		typo := filepath.Join(dir, "typo.yaml")
		require.NoError(t, os.WriteFile(typo, []byte("adress: 0.0.0.0:7070\n"), 0o600))
		badRole := filepath.Join(dir, "role.yaml")
		require.NoError(t, os.WriteFile(badRole, []byte("tokens: {s3cret: root}\n"), 0o600))

		for _, tc := range []struct {
			name     string
			env      []string
			args     []string
			wantCode int
			want     string
		}{
			{"OpenOnAllInterfaces", nil, []string{"server", "--db", db, "--addr", "0.0.0.0:0", "--check-config"}, 2, "refusing to serve"},
			{"InsecureOnAllInterfaces", nil, []string{"server", "--db", db, "--addr", "0.0.0.0:0", "--insecure", "--check-config"}, 0, "config ok"},
			{"TokensFromFile", nil, []string{"server", "--db", db, "--config", good, "--check-config"}, 0, "addr 0.0.0.0:7070, bearer tokens (1 admin)"},
			{"FlagOverridesFile", nil, []string{"server", "--db", db, "--config", good, "--addr", "127.0.0.1:9", "--check-config"}, 0, "addr 127.0.0.1:9"},
			{"EnvOverridesFile", []string{"ORDO_ADDR=127.0.0.1:8"}, []string{"server", "--db", db, "--config", good, "--check-config"}, 0, "addr 127.0.0.1:8"},
			{"TokensFromEnv", []string{"ORDO_TOKENS=a=admin,r=reader"}, []string{"server", "--db", db, "--addr", ":0", "--check-config"}, 0, "bearer tokens (1 admin, 1 reader)"},
			{"BadTokensEnv", []string{"ORDO_TOKENS=justatoken"}, []string{"server", "--db", db, "--check-config"}, 2, "TOKEN=ROLE"},
			{"UnknownConfigKey", nil, []string{"server", "--db", db, "--config", typo}, 2, "adress"},
			{"BadRole", nil, []string{"server", "--db", db, "--config", badRole}, 2, `role "root"`},
			{"MissingConfig", nil, []string{"server", "--db", db, "--config", filepath.Join(dir, "none.yaml")}, 2, "reading config"},
			{"NoDB", nil, []string{"server"}, 2, "--db is required"},
			{"PostgresConfig", nil, []string{"server", "--db", "postgres://ordo:s3cret@localhost/ordo", "--schema", "ordo", "--roles", "executor,effects", "--check-config"}, 0, "db postgres://ordo:xxxxx@localhost/ordo schema ordo (PostgreSQL), roles executor,effects"},
			{"BadRoles", nil, []string{"server", "--db", "postgres://ordo@localhost/ordo", "--roles", "api,worker", "--check-config"}, 2, `unknown role "worker"`},
			{"RolesOnSQLite", nil, []string{"server", "--db", db, "--roles", "api", "--check-config"}, 2, "SQLite file is used by one process only"},
			{"SchemaOnSQLite", nil, []string{"server", "--db", db, "--schema", "x", "--check-config"}, 2, "PostgreSQL only"},
			{"DevNotLoopback", nil, []string{"dev", "--db", db, "--addr", "0.0.0.0:0"}, 2, "loopback"},
			{"AddrInvalid", nil, []string{"server", "--db", db, "--addr", "nope", "--check-config"}, 2, "HOST:PORT"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				out, errOut, code := ordo(t, bin, tc.env, tc.args...)
				require.Equal(t, tc.wantCode, code, "stdout: %s\nstderr: %s", out, errOut)
				require.Contains(t, out+errOut, tc.want)
				require.NotContains(t, out+errOut, "s3cret", "tokens are never printed")
			})
		}
	})
}
