package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordotype"
)

// The steps of testdata/order-remote.yaml.
var remoteOrderSteps = []string{"payment", "reserve-inventory", "create-label", "ship", "notify"}

// workerProcess is a running examples/worker.
type workerProcess struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	paused chan string // the "paused task=..." lines
	done   chan struct{}
}

func (p *workerProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// startWorker starts the worker binary and waits for its "polling" line.
func startWorker(t *testing.T, bin string, args ...string) *workerProcess {
	t.Helper()
	p := &workerProcess{cmd: exec.Command(bin, args...), paused: make(chan string, 100), done: make(chan struct{})}
	p.cmd.Env = cleanEnv()
	var stderr bytes.Buffer
	p.cmd.Stderr = &stderr
	pipe, err := p.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, p.cmd.Start())
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(pipe)
		first := true
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, line)
			p.mu.Unlock()
			if first && strings.Contains(line, " polling ") {
				first = false
				close(ready)
			}
			if strings.HasPrefix(line, "paused ") {
				select {
				case p.paused <- line:
				default:
				}
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
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatalf("worker %v did not start; it printed:\n%s\n%s", args, p.output(), stderr.String())
	}
	return p
}

// kill9 kills the worker with SIGKILL: it sends nothing more.
func (p *workerProcess) kill9(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Kill())
	<-p.done
	_ = p.cmd.Wait()
}

// buildWorker builds examples/worker.
func buildWorker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "worker")
	out, err := exec.Command("go", "build", "-o", bin, "../../examples/worker").CombinedOutput()
	require.NoError(t, err, string(out))
	return bin
}

// curlWorker is a worker in plain HTTP, as one in any language would be:
// poll, then complete, with JSON bodies and a bearer token. It completes
// every task it takes with {"worker": name}.
func curlWorker(ctx context.Context, base, token, name string, done *atomic.Int64) error {
	post := func(path string, body any, out any) (int, error) {
		data, _ := json.Marshal(body)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(data))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return resp.StatusCode, fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, b)
		}
		if out != nil {
			return resp.StatusCode, json.Unmarshal(b, out)
		}
		return resp.StatusCode, nil
	}
	for ctx.Err() == nil {
		var polled struct {
			Tasks []struct {
				ID    string `json:"id"`
				Claim int    `json:"claim"`
			} `json:"tasks"`
		}
		_, err := post("/api/v1/tasks/poll", map[string]any{
			"queues": []string{"payment", "inventory", "shipping", "notifications"},
			"worker": name, "max": 1, "waitSeconds": 1,
		}, &polled)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, task := range polled.Tasks {
			status, err := post("/api/v1/tasks/"+task.ID+"/complete", map[string]any{
				"claim":  task.Claim,
				"output": map[string]any{"worker": name},
			}, nil)
			if err != nil && status != http.StatusConflict { // 409: the lease was lost
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			if err == nil {
				done.Add(1)
			}
		}
	}
	return nil
}

// TestWorkersEndToEnd runs `ordo server` with two worker processes built
// with the Go worker SDK (examples/worker) and a plain-HTTP worker, through
// 200 orders. One Go worker is killed with SIGKILL while it holds tasks:
// their leases end and the other workers finish them. Every instance
// completes once, and every step of it completes once.
func TestWorkersEndToEnd(t *testing.T) {
	t.Parallel()
	const orders = 200
	bin := ordoBinary(t)
	workerBin := buildWorker(t)
	dir := t.TempDir()

	srv := startServer(t, bin, []string{"ORDO_TOKENS=e2e-admin=admin,e2e-op=operator"},
		"server", "--db", filepath.Join(dir, "ordo.db"), "--addr", "127.0.0.1:0", "--task-lease", "2s")
	out, errOut, code := ordo(t, bin, nil, "deploy", "testdata/order-remote.yaml", "--server", srv.url, "--token", "e2e-admin")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "deployed order-remote version 1")

	pauseFile := filepath.Join(dir, "pause")
	workerArgs := []string{"-server", srv.url, "-token", "e2e-op", "-concurrency", "4", "-delay", "5ms"}
	a := startWorker(t, workerBin, append(workerArgs, "-name", "go-a", "-pause-file", pauseFile)...)
	b := startWorker(t, workerBin, append(workerArgs, "-name", "go-b")...)
	ctx, cancel := context.WithCancel(context.Background())
	var curlDone atomic.Int64
	curlErr := make(chan error, 2)
	for i := range 2 {
		go func() { curlErr <- curlWorker(ctx, srv.url, "e2e-op", fmt.Sprintf("curl-%d", i), &curlDone) }()
	}
	defer func() {
		cancel()
		for range 2 {
			require.NoError(t, <-curlErr)
		}
	}()

	client, err := ordoclient.New(srv.url, &ordoclient.Options{Token: "e2e-op"})
	require.NoError(t, err)
	ids := make([]string, orders)
	var wg sync.WaitGroup
	startErr := make(chan error, orders)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < orders; i += 8 {
				res, err := client.Start(ctx, "order-remote", &ordoclient.StartRequest{
					Input: json.RawMessage(fmt.Sprintf(`{"orderId":"o-%03d","customer":"c-%d","amount":%d}`, i, i%7, 10+i)),
				})
				if err != nil {
					startErr <- err
					return
				}
				ids[i] = res.ID
			}
		}()
	}

	// Once some orders are through, the Go worker "go-a" starts holding
	// every task it takes; once it holds one, it is killed.
	completed := func() int {
		list, err := client.List(ctx, &ordoclient.ListParams{Workflow: "order-remote", Statuses: []ordotype.Status{ordotype.StatusCompleted}, Limit: 1000})
		require.NoError(t, err)
		return len(list.Instances)
	}
	require.Eventually(t, func() bool { return completed() >= 40 }, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, os.WriteFile(pauseFile, nil, 0o600))
	var held []string
	select {
	case line := <-a.paused:
		held = append(held, line)
	case <-time.After(20 * time.Second):
		t.Fatalf("go-a never held a task; it printed:\n%s", a.output())
	}
	time.Sleep(100 * time.Millisecond) // let it take what else it can
	a.kill9(t)
	startedAt := completed()
	for len(a.paused) > 0 {
		held = append(held, <-a.paused)
	}
	t.Logf("killed go-a while it held %d tasks, with %d of %d orders completed", len(held), startedAt, orders)

	wg.Wait()
	close(startErr)
	for err := range startErr {
		require.NoError(t, err)
	}

	// Every order completes: go-a's held tasks after their leases end.
	require.Eventually(t, func() bool { return completed() == orders }, 40*time.Second, 50*time.Millisecond,
		"not every order completed; go-b printed:\n%s", b.output())

	// Each instance completed once, each step completed once, and we know
	// who did it from the step's output.
	doneBy := map[string]int{}
	heldSteps := map[string]bool{} // instance/step
	for _, line := range held {
		f := fields(line)
		heldSteps[f["instance"]+"/"+f["step"]] = true
	}
	redelivered := 0
	for _, id := range ids {
		inst, err := client.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, ordotype.StatusCompleted, inst.Status, id)
		evs, err := client.Journal(ctx, id)
		require.NoError(t, err)
		require.Equal(t, 1, countEvents(evs, "workflow.completed", ""), id)
		for _, step := range remoteOrderSteps {
			completedEvents := 0
			for _, e := range evs {
				if e.Type != "step.completed" || e.Step != step {
					continue
				}
				completedEvents++
				var data struct {
					Output struct{ Worker string } `json:"output"`
				}
				require.NoError(t, json.Unmarshal(e.Data, &data), string(e.Data))
				require.NotEmpty(t, data.Output.Worker, "%s %s: %s", id, step, e.Data)
				doneBy[data.Output.Worker]++
				if heldSteps[id+"/"+step] {
					require.NotEqual(t, "go-a", data.Output.Worker, "go-a was killed while holding %s/%s", id, step)
					redelivered++
				}
			}
			require.Equal(t, 1, completedEvents, "%s: step %s completed %d times", id, step, completedEvents)
			if heldSteps[id+"/"+step] {
				require.GreaterOrEqual(t, countEvents(evs, "step.started", step), 2,
					"%s/%s was taken by go-a, then again when its lease ran out", id, step)
			}
		}
	}
	require.Equal(t, len(heldSteps), redelivered, "every task go-a held was finished by another worker")
	require.Positive(t, doneBy["go-a"], "go-a did steps before it was killed: %v", doneBy)
	require.Positive(t, doneBy["go-b"], "go-b did steps: %v", doneBy)
	require.Positive(t, doneBy["curl-0"]+doneBy["curl-1"], "the plain-HTTP worker did steps: %v", doneBy)
	require.Equal(t, orders*len(remoteOrderSteps), doneBy["go-a"]+doneBy["go-b"]+doneBy["curl-0"]+doneBy["curl-1"])
	t.Logf("steps done by: %v (%d by the plain-HTTP worker)", doneBy, curlDone.Load())

	// Nothing is left open.
	tasks, err := client.ListTasks(ctx, &ordoclient.ListTasksParams{})
	require.NoError(t, err)
	require.Empty(t, tasks)

	// ordo bench --server runs its own workflow through the same server
	// with worker SDK workers of its own.
	out, errOut, code = ordo(t, bin, []string{"ORDO_TOKEN=e2e-admin"}, "bench", "--server", srv.url, "--instances", "100", "--concurrency", "10", "-o", "json")
	require.Equal(t, 0, code, errOut)
	var res map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &res), out)
	require.Equal(t, "order", res["workload"])
	require.Equal(t, "server", res["store"])
	require.Equal(t, srv.url, res["db"])
	require.EqualValues(t, 100, res["instances"])
	require.EqualValues(t, 4, res["workers"])
	require.EqualValues(t, 16, res["worker_concurrency"])
	require.EqualValues(t, 100*5+25, res["tasks"], "five steps per order, and a gift for one order in four")
	require.Greater(t, res["per_second"].(float64), 0.0)
	require.Greater(t, res["p99_ms"].(float64), 0.0)
	list, err := client.List(ctx, &ordoclient.ListParams{Workflow: "bench-order-remote", Statuses: []ordotype.Status{ordotype.StatusCompleted}, Limit: 1000})
	require.NoError(t, err)
	require.Len(t, list.Instances, 100)

	out, errOut, code = ordo(t, bin, nil, "bench", "--server", srv.url, "--instances", "10", "--token", "e2e-op")
	require.Equal(t, 4, code, "an operator may not deploy: %s %s", out, errOut)
	for _, args := range [][]string{
		{"bench", "--server", "127.0.0.1:7070"},
		{"bench", "--server", srv.url, "--db", filepath.Join(dir, "x.db")},
		{"bench", "--server", srv.url, "--worker-concurrency", "-1"},
	} {
		_, errOut, code := ordo(t, bin, nil, args...)
		require.Equal(t, 2, code, "%v: %s", args, errOut)
	}
}

// fields parses "word k=v k=v".
func fields(line string) map[string]string {
	out := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			out[k] = v
		}
	}
	return out
}

func countEvents(evs []ordoclient.Event, typ, step string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ && (step == "" || e.Step == step) {
			n++
		}
	}
	return n
}
