package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/worker"
)

// orderYAML is a small order flow on worker queues: a join and a state.
const orderYAML = `workflow: order
retry: {maxAttempts: 3, initialInterval: 10ms, backoffFactor: 1}
onFailure: review
steps:
  - id: pay
    task: {queue: payment, command: charge}
  - id: pick
    after: [pay]
    task: {queue: stock}
  - id: label
    after: [pay]
    task: {queue: shipping, command: label}
  - id: ship
    after: [pick, label]
    task: {queue: shipping, command: ship}
`

// oneStepYAML has a single step on queue "q".
const oneStepYAML = `workflow: one
retry: {maxAttempts: 3, initialInterval: 10ms, backoffFactor: 1}
onFailure: review
steps:
  - id: only
    task: {queue: q}
`

func TestWorker_RunsAWorkflow(t *testing.T) {
	t.Parallel()
	b := startServer(t, 0)
	b.deploy(t, orderYAML)

	w, err := worker.New(b.workerOptions("w1"))
	require.NoError(t, err)
	var (
		mu   sync.Mutex
		seen = map[string]*worker.Task{}
	)
	record := func(t *worker.Task) {
		mu.Lock()
		defer mu.Unlock()
		seen[t.InstanceID+"/"+t.Step] = t
	}
	w.Handle("payment", func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
		record(task)
		var in struct{ Amount int }
		if err := task.Bind(&in); err != nil {
			return nil, err
		}
		return &worker.Result{
			Output:  map[string]any{"paid": in.Amount},
			State:   map[string]any{"paid": true},
			Effects: []worker.Effect{worker.LogEffect("paid", map[string]any{"amount": in.Amount})},
		}, nil
	})
	w.Handle("stock", func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
		record(task)
		var state struct{ Paid bool }
		if err := task.BindState(&state); err != nil {
			return nil, err
		}
		if !state.Paid {
			return nil, worker.NonRetryable(errors.New("not paid"))
		}
		return &worker.Result{Output: json.RawMessage(`{"reserved":true}`)}, nil
	})
	w.Handle("shipping", func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
		record(task)
		if task.Command == "label" {
			return &worker.Result{Output: "LBL-1"}, nil
		}
		var in map[string]json.RawMessage
		if err := task.Bind(&in); err != nil {
			return nil, err
		}
		return &worker.Result{Output: map[string]any{"label": in["label"], "pick": in["pick"]}}, nil
	})
	run(t, w)

	ids := make([]string, 10)
	for i := range ids {
		ids[i] = b.start(t, "order", fmt.Sprintf(`{"orderId":"o-%d","amount":%d}`, i, 10+i))
	}
	for i, id := range ids {
		inst := b.wait(t, id)
		require.Equal(t, ordo.StatusCompleted, inst.Status, "%+v", inst.Error)
		require.JSONEq(t, `{"paid":true}`, string(inst.State))
		require.JSONEq(t, `{"label":"LBL-1","pick":{"reserved":true}}`, string(inst.Output))
		require.JSONEq(t, fmt.Sprintf(`{"paid":%d}`, 10+i), string(inst.Steps[0].Output))
		evs := b.journal(t, id)
		for _, step := range []string{"pay", "pick", "label", "ship"} {
			require.Equal(t, 1, count(evs, "step.completed", step), step)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 40)
	pay := seen[ids[3]+"/pay"]
	require.Equal(t, "order", pay.Workflow)
	require.Equal(t, 1, pay.Version)
	require.Equal(t, "payment", pay.Queue)
	require.Equal(t, "charge", pay.Command)
	require.Equal(t, 1, pay.Attempt)
	require.NotEmpty(t, pay.IdempotencyKey)
	require.NotZero(t, pay.Claim)
	require.JSONEq(t, `{"orderId":"o-3","amount":13}`, string(pay.WorkflowInput))
	require.False(t, pay.LeaseUntil.IsZero())
	require.Equal(t, "task", pay.Kind)
	// Each pay's completion brought one of pick and label back to the
	// worker, leased and started, without a poll.
	require.GreaterOrEqual(t, b.eng.Stats().TakenNext, int64(len(ids)))
}

func TestWorker_Errors(t *testing.T) {
	t.Parallel()
	b := startServer(t, 0)
	b.deploy(t, oneStepYAML)

	var calls sync.Map // instance id -> *atomic.Int32
	w, err := worker.New(b.workerOptions("w1"))
	require.NoError(t, err)
	w.Handle("q", func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
		n, _ := calls.LoadOrStore(task.InstanceID, new(atomic.Int32))
		attempt := n.(*atomic.Int32).Add(1)
		var in struct{ Mode string }
		if err := task.BindWorkflowInput(&in); err != nil {
			return nil, err
		}
		switch in.Mode {
		case "flaky": // fails twice, then works
			if attempt < 3 {
				return nil, fmt.Errorf("flaky %d", attempt)
			}
			return &worker.Result{Output: map[string]int{"attempt": task.Attempt}}, nil
		case "declined":
			return nil, worker.NonRetryable(worker.WithCode("card_declined", errors.New("card declined")))
		case "library":
			// The library's constructors classify the same.
			return nil, ordo.NonRetryable(ordo.WithCode("lib_code", errors.New("from the library")))
		case "panic":
			panic("boom")
		case "badjson":
			return &worker.Result{Output: json.RawMessage(`{nope`)}, nil
		}
		return nil, nil
	})
	run(t, w)

	flaky := b.start(t, "one", `{"mode":"flaky"}`)
	declined := b.start(t, "one", `{"mode":"declined"}`)
	library := b.start(t, "one", `{"mode":"library"}`)
	panicky := b.start(t, "one", `{"mode":"panic"}`)
	badJSON := b.start(t, "one", `{"mode":"badjson"}`)
	empty := b.start(t, "one", `{"mode":""}`)

	t.Run("RetryableIsRetried", func(t *testing.T) {
		inst := b.wait(t, flaky)
		require.Equal(t, ordo.StatusCompleted, inst.Status)
		require.JSONEq(t, `{"attempt":3}`, string(inst.Output))
		require.Equal(t, 2, count(b.journal(t, flaky), "step.failed", "only"))
	})
	t.Run("NonRetryableWithCode", func(t *testing.T) {
		inst := b.wait(t, declined)
		require.Equal(t, ordo.StatusReview, inst.Status)
		require.Equal(t, 1, inst.Steps[0].Attempt, "not retried")
		require.NotNil(t, inst.Steps[0].Error)
		require.Equal(t, "card_declined", inst.Steps[0].Error.Code)
		require.Equal(t, "card declined", inst.Steps[0].Error.Message)
		require.False(t, inst.Steps[0].Error.Retryable)
	})
	t.Run("LibraryErrors", func(t *testing.T) {
		inst := b.wait(t, library)
		require.Equal(t, ordo.StatusReview, inst.Status)
		require.Equal(t, 1, inst.Steps[0].Attempt)
		require.Equal(t, "lib_code", inst.Steps[0].Error.Code)
	})
	t.Run("PanicIsARetryableFailure", func(t *testing.T) {
		inst := b.wait(t, panicky)
		require.Equal(t, ordo.StatusReview, inst.Status)
		require.Equal(t, 3, inst.Steps[0].Attempt, "retried up to maxAttempts")
		require.Contains(t, inst.Steps[0].Error.Message, "handler panicked: boom")
	})
	t.Run("InvalidOutputFailsTheStep", func(t *testing.T) {
		inst := b.wait(t, badJSON)
		require.Equal(t, ordo.StatusReview, inst.Status)
		require.Equal(t, 1, inst.Steps[0].Attempt)
		require.Contains(t, inst.Steps[0].Error.Message, "output is not valid JSON")
	})
	t.Run("NilResult", func(t *testing.T) {
		inst := b.wait(t, empty)
		require.Equal(t, ordo.StatusCompleted, inst.Status)
	})
}

func TestWorker_Concurrency(t *testing.T) {
	t.Parallel()
	b := startServer(t, 0)
	b.deploy(t, oneStepYAML)

	opts := b.workerOptions("w1")
	opts.Concurrency = 3
	w, err := worker.New(opts)
	require.NoError(t, err)
	var running gauge
	w.Handle("q", func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
		defer running.enter()()
		time.Sleep(100 * time.Millisecond)
		return nil, nil
	})
	ids := make([]string, 12)
	for i := range ids {
		ids[i] = b.start(t, "one", `{}`)
	}
	run(t, w)
	for _, id := range ids {
		require.Equal(t, ordo.StatusCompleted, b.wait(t, id).Status)
	}
	require.Equal(t, int32(3), running.peak.Load(), "runs up to Concurrency tasks at once, and no more")
}

// A busy worker takes the steps a completion makes ready with its answer:
// one runs next in the same slot, the others are held for the next free
// slot, and Concurrency still bounds what runs at once. Without prefetch,
// the others wait for a poll.
func TestWorker_Prefetch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		prefetch  int
		takenNext int64
	}{
		// pay's completion brings pick and label, label's brings ship.
		{"held", 2, 3},
		// pay's completion brings pick; label is polled; the last of pick
		// and label brings ship.
		{"none", -1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := startServer(t, 0)
			b.deploy(t, orderYAML)
			opts := b.workerOptions("w1")
			opts.Concurrency, opts.Prefetch = 1, tc.prefetch
			w, err := worker.New(opts)
			require.NoError(t, err)
			var running gauge
			var mu sync.Mutex
			var order []string
			h := func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
				defer running.enter()()
				mu.Lock()
				order = append(order, task.Step)
				mu.Unlock()
				return nil, nil
			}
			for _, q := range []string{"payment", "stock", "shipping"} {
				w.Handle(q, h)
			}
			id := b.start(t, "order", `{}`)
			run(t, w)
			require.Equal(t, ordo.StatusCompleted, b.wait(t, id).Status)
			require.Equal(t, int32(1), running.peak.Load(), "one task at a time")
			require.Equal(t, tc.takenNext, b.eng.Stats().TakenNext)
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, order, 4, "each step ran once: %v", order)
			require.Equal(t, "ship", order[3])
		})
	}
}

// pollCounter counts the polls the server answered with tasks.
type pollCounter struct {
	rt       http.RoundTripper
	nonEmpty atomic.Int32
}

func (c *pollCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.rt.RoundTrip(r)
	if err != nil || !strings.HasSuffix(r.URL.Path, "/tasks/poll") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if bytes.Contains(body, []byte(`"id"`)) {
		c.nonEmpty.Add(1)
	}
	return resp, err
}

// A poll takes tasks to hold too: a worker with one slot takes four waiting
// tasks in one poll and runs them one after the other.
func TestWorker_PrefetchOnPoll(t *testing.T) {
	t.Parallel()
	b := startServer(t, 0)
	b.deploy(t, oneStepYAML)
	ids := make([]string, 4)
	for i := range ids {
		ids[i] = b.start(t, "one", `{}`)
	}
	pc := &pollCounter{rt: http.DefaultTransport}
	opts := b.workerOptions("w1")
	opts.Concurrency, opts.Prefetch, opts.HTTPClient = 1, 3, &http.Client{Transport: pc}
	w, err := worker.New(opts)
	require.NoError(t, err)
	var running gauge
	w.Handle("q", func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
		defer running.enter()()
		return nil, nil
	})
	run(t, w)
	for _, id := range ids {
		require.Equal(t, ordo.StatusCompleted, b.wait(t, id).Status)
	}
	require.Equal(t, int32(1), running.peak.Load(), "one task at a time")
	require.Equal(t, int32(1), pc.nonEmpty.Load(), "one poll brought the four tasks")
}

// A held task whose lease runs out before a slot is free is renewed before
// it runs, or dropped when another worker took it meanwhile: either way it
// runs once.
func TestWorker_HeldTaskWhoseLeaseRanOut(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		other     bool // a second worker polls while the task is held
		delivered int
	}{
		{"renewed", false, 2},
		{"taken by another", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := startServer(t, 300*time.Millisecond)
			b.deploy(t, oneStepYAML)
			ids := []string{b.start(t, "one", `{}`), b.start(t, "one", `{}`)}
			var mu sync.Mutex
			runs := map[string]int{}
			started, second := make(chan struct{}), make(chan struct{})
			handler := func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
				mu.Lock()
				runs[task.InstanceID]++
				first := len(runs) == 1
				mu.Unlock()
				if !first {
					close(second)
					return nil, nil
				}
				close(started)
				// Heartbeats keep this task's lease; the held one's runs
				// out (and w2 takes it, when there is a w2).
				time.Sleep(time.Second)
				if tc.other {
					select {
					case <-second:
					case <-time.After(10 * time.Second):
						t.Error("w2 never took the held task")
					}
				}
				return nil, nil
			}
			opts := b.workerOptions("w1")
			opts.Concurrency, opts.Prefetch = 1, 1
			w1, err := worker.New(opts)
			require.NoError(t, err)
			w1.Handle("q", handler)
			run(t, w1)
			if tc.other {
				<-started // w1 holds the other task
				w2, err := worker.New(b.workerOptions("w2"))
				require.NoError(t, err)
				w2.Handle("q", handler)
				run(t, w2)
			}
			for _, id := range ids {
				require.Equal(t, ordo.StatusCompleted, b.wait(t, id).Status)
			}
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, map[string]int{ids[0]: 1, ids[1]: 1}, runs, "each ran once")
			delivered := count(b.journal(t, ids[0]), "step.started", "only") + count(b.journal(t, ids[1]), "step.started", "only")
			require.Equal(t, tc.delivered, delivered)
		})
	}
}

// A handler that runs longer than the lease keeps its task: the worker
// renews the lease.
func TestWorker_HeartbeatKeepsTheLease(t *testing.T) {
	t.Parallel()
	b := startServer(t, time.Second)
	b.deploy(t, oneStepYAML)

	var runs atomic.Int32
	slow := func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
		runs.Add(1)
		select {
		case <-time.After(2500 * time.Millisecond):
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
		return &worker.Result{Output: "slow"}, nil
	}
	for _, name := range []string{"w1", "w2"} {
		w, err := worker.New(b.workerOptions(name))
		require.NoError(t, err)
		w.Handle("q", slow)
		run(t, w)
	}
	id := b.start(t, "one", `{}`)
	inst := b.wait(t, id)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.Equal(t, int32(1), runs.Load(), "the task ran once: its lease never ended")
	require.Equal(t, 1, count(b.journal(t, id), "step.started", "only"))
}

// A worker whose heartbeats do not get through loses its lease; the task
// goes to another worker. When the first one's heartbeat then reaches the
// server, its handler's context is cancelled with ErrLeaseLost, and its
// result is dropped: the step completes once, with the second worker's
// output.
func TestWorker_LeaseLost(t *testing.T) {
	t.Parallel()
	b := startServer(t, 500*time.Millisecond)
	b.deploy(t, oneStepYAML)

	// w1 takes the task; its heartbeats are held until w2 has completed it.
	ft := newFaultyTransport(isHeartbeat)
	opts := b.workerOptions("w1")
	opts.HTTPClient = &http.Client{Transport: ft}
	opts.Concurrency = 1 // busy with the task, w1 does not take it again
	w1, err := worker.New(opts)
	require.NoError(t, err)
	took := make(chan struct{})
	cause := make(chan error, 1)
	w1.Handle("q", func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
		close(took)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return &worker.Result{Output: "from w1"}, nil
	})
	run(t, w1)
	id := b.start(t, "one", `{}`)
	<-took

	w2, err := worker.New(b.workerOptions("w2"))
	require.NoError(t, err)
	w2.Handle("q", func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
		return &worker.Result{Output: "from w2"}, nil
	})
	run(t, w2)
	inst := b.wait(t, id)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.Equal(t, `"from w2"`, string(inst.Output))
	require.Positive(t, ft.heldCount(), "w1 tried to heartbeat")

	close(ft.release)
	select {
	case err := <-cause:
		require.ErrorIs(t, err, worker.ErrLeaseLost)
	case <-time.After(10 * time.Second):
		t.Fatal("w1's handler was not cancelled")
	}
	evs := b.journal(t, id)
	require.Equal(t, 1, count(evs, "step.completed", "only"))
	require.Equal(t, 2, count(evs, "step.started", "only"), "claimed by w1, then by w2")
	inst, err = b.client.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, `"from w2"`, string(inst.Output))
}

// A handler that finishes after its lease was lost sends a late result; the
// server refuses it, and the worker drops it and goes on working.
func TestWorker_LateCompletionIsDropped(t *testing.T) {
	t.Parallel()
	b := startServer(t, 500*time.Millisecond)
	b.deploy(t, oneStepYAML)

	ft := newFaultyTransport(isHeartbeat)
	opts := b.workerOptions("w1")
	opts.HTTPClient = &http.Client{Transport: ft}
	opts.Concurrency = 1 // busy with the held task, w1 does not take it again
	w1, err := worker.New(opts)
	require.NoError(t, err)
	took := make(chan struct{}, 1)
	finish := make(chan struct{})
	var w1Results atomic.Int32
	w1.Handle("q", func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
		var in struct{ Hold bool }
		_ = task.BindWorkflowInput(&in)
		if in.Hold {
			took <- struct{}{}
			<-finish // ignores ctx: it cannot learn of the lost lease
		}
		w1Results.Add(1)
		return &worker.Result{Output: "from w1"}, nil
	})
	run(t, w1)
	id := b.start(t, "one", `{"hold":true}`)
	<-took

	w2, err := worker.New(b.workerOptions("w2"))
	require.NoError(t, err)
	w2.Handle("q", func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
		return &worker.Result{Output: "from w2"}, nil
	})
	r2 := run(t, w2)
	require.Equal(t, `"from w2"`, string(b.wait(t, id).Output))
	require.NoError(t, r2.stop(t))

	close(finish) // w1 completes late
	// w1 goes on working: it completes the next instance.
	next := b.start(t, "one", `{}`)
	inst := b.wait(t, next)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.Equal(t, `"from w1"`, string(inst.Output))
	require.Equal(t, int32(2), w1Results.Load())

	evs := b.journal(t, id)
	require.Equal(t, 1, count(evs, "step.completed", "only"), "the late result was not applied")
	// The task was done when w1's result came: the worker named the
	// instance, so the refusal is journaled there.
	require.Equal(t, 1, count(evs, "step.rejected", "only"), "the late result is journaled once")
	for _, e := range evs {
		if e.Type == "step.rejected" {
			require.Contains(t, string(e.Data), `"worker":"w1"`)
			require.Contains(t, string(e.Data), "the task is done")
		}
	}
	got, err := b.client.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, `"from w2"`, string(got.Output))
}

// TestWorker_StepTimeoutEndsTheHandler checks that a step's timeout is the
// deadline of the handler's context, and that the attempt that ran past it
// times out on the server and is retried.
func TestWorker_StepTimeoutEndsTheHandler(t *testing.T) {
	t.Parallel()
	b := startServer(t, 30*time.Second)
	b.deploy(t, `workflow: timed
retry: {maxAttempts: 2, initialInterval: 10ms, backoffFactor: 1}
steps:
  - id: only
    task: {queue: q}
    timeout: 400ms
`)
	w, err := worker.New(b.workerOptions("w1"))
	require.NoError(t, err)
	var first atomic.Bool
	ended := make(chan error, 1)
	w.Handle("q", func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
		if first.CompareAndSwap(false, true) {
			if task.Deadline.IsZero() {
				ended <- errors.New("the task has no deadline")
				return nil, errors.New("no deadline")
			}
			<-ctx.Done() // works until the step's timeout
			ended <- ctx.Err()
			return nil, ctx.Err()
		}
		return &worker.Result{Output: "in time"}, nil
	})
	run(t, w)
	id := b.start(t, "timed", `{}`)
	require.ErrorIs(t, <-ended, context.DeadlineExceeded)
	inst := b.wait(t, id)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.Equal(t, `"in time"`, string(inst.Output))
	evs := b.journal(t, id)
	require.Equal(t, 1, count(evs, "step.failed", "only"))
	for _, e := range evs {
		if e.Type == "step.failed" {
			require.Contains(t, string(e.Data), `"code":"timeout"`)
		}
	}
}

// Stopping a worker lets its handlers in flight finish and sends their
// results before Run returns.
func TestWorker_GracefulStop(t *testing.T) {
	t.Parallel()
	b := startServer(t, 0)
	b.deploy(t, oneStepYAML)

	w, err := worker.New(b.workerOptions("w1"))
	require.NoError(t, err)
	took := make(chan struct{})
	var ctxErr atomic.Value
	w.Handle("q", func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
		close(took)
		time.Sleep(300 * time.Millisecond)
		if ctx.Err() != nil {
			ctxErr.Store(ctx.Err())
		}
		return &worker.Result{Output: "finished"}, nil
	})
	r := run(t, w)
	id := b.start(t, "one", `{}`)
	<-took
	require.NoError(t, r.stop(t))
	require.Nil(t, ctxErr.Load(), "stopping does not cancel the handler")
	// Run returned after the result was sent.
	inst, err := b.client.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.Equal(t, `"finished"`, string(inst.Output))
}

// A handler that does not finish within StopTimeout is cancelled with
// ErrStopTimeout, and Run returns.
func TestWorker_StopTimeout(t *testing.T) {
	t.Parallel()
	b := startServer(t, 0)
	b.deploy(t, oneStepYAML)

	opts := b.workerOptions("w1")
	opts.StopTimeout = 200 * time.Millisecond
	w, err := worker.New(opts)
	require.NoError(t, err)
	took := make(chan struct{})
	cause := make(chan error, 1)
	w.Handle("q", func(ctx context.Context, task *worker.Task) (*worker.Result, error) {
		close(took)
		<-ctx.Done()
		cause <- context.Cause(ctx)
		return nil, context.Cause(ctx)
	})
	r := run(t, w)
	b.start(t, "one", `{}`)
	<-took
	t0 := time.Now()
	require.NoError(t, r.stop(t))
	require.Less(t, time.Since(t0), 5*time.Second)
	require.ErrorIs(t, <-cause, worker.ErrStopTimeout)
}

func TestWorker_Misuse(t *testing.T) {
	t.Parallel()

	t.Run("Options", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			opts worker.Options
			want string
		}{
			{worker.Options{}, "Options.Server is required"},
			{worker.Options{Server: "127.0.0.1:7070"}, "must look like http://host:port"},
			{worker.Options{Server: "http://x", Concurrency: -1}, "Concurrency"},
			{worker.Options{Server: "http://x", PollWait: -time.Second}, "PollWait"},
			{worker.Options{Server: "http://x", StopTimeout: -time.Second}, "StopTimeout"},
			{worker.Options{Server: "http://x", PollWait: 30 * time.Second, HTTPClient: &http.Client{Timeout: 10 * time.Second}}, "must be longer than PollWait"},
		} {
			_, err := worker.New(tc.opts)
			require.ErrorContains(t, err, tc.want)
		}
	})

	t.Run("NoHandlers", func(t *testing.T) {
		t.Parallel()
		w, err := worker.New(worker.Options{Server: "http://127.0.0.1:1"})
		require.NoError(t, err)
		require.ErrorContains(t, w.Run(context.Background()), "no queue to poll")
	})

	t.Run("HandlePanics", func(t *testing.T) {
		t.Parallel()
		w, err := worker.New(worker.Options{Server: "http://127.0.0.1:1"})
		require.NoError(t, err)
		require.Panics(t, func() { w.Handle("", func(context.Context, *worker.Task) (*worker.Result, error) { return nil, nil }) })
		require.Panics(t, func() { w.Handle("q", nil) })
	})

	t.Run("BadToken", func(t *testing.T) {
		t.Parallel()
		b := startServer(t, 0)
		opts := b.workerOptions("w1")
		opts.Token = "wrong"
		w, err := worker.New(opts)
		require.NoError(t, err)
		w.Handle("q", func(context.Context, *worker.Task) (*worker.Result, error) { return nil, nil })
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = w.Run(ctx)
		require.ErrorContains(t, err, "unknown token")
		require.NoError(t, ctx.Err(), "Run returned at once")
	})

	t.Run("ServerDown", func(t *testing.T) {
		t.Parallel()
		// Nothing listens: Run keeps trying until it is stopped.
		opts := worker.Options{Server: "http://127.0.0.1:1", Logger: slog.New(slog.DiscardHandler), PollWait: time.Second}
		w, err := worker.New(opts)
		require.NoError(t, err)
		w.Handle("q", func(context.Context, *worker.Task) (*worker.Result, error) { return nil, nil })
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		require.NoError(t, w.Run(ctx))
	})
}
