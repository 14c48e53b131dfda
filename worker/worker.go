package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ordoflow/ordo/ordoclient"
)

// Defaults of [Options].
const (
	DefaultConcurrency = 10
	DefaultPollWait    = 30 * time.Second
	DefaultStopTimeout = 30 * time.Second
)

// Options configure a [Worker].
type Options struct {
	// Server is the Ordo server's base URL, e.g. "http://127.0.0.1:7070".
	// Required.
	Server string
	// Token is sent as a bearer token; it needs the operator role. Empty
	// sends none (a server without tokens, such as ordo dev).
	Token string
	// Name identifies this worker in the server's leases and logs.
	// Defaults to hostname-pid.
	Name string
	// Concurrency is how many tasks may run at once. Defaults to 10.
	Concurrency int
	// Prefetch is about how many tasks, beyond the Concurrency running,
	// the worker may hold ready to run. Every completion asks the server
	// for the worker's next task, which the same slot runs at once. A
	// completion that makes several steps ready, and a poll, may also take
	// more while the worker holds fewer than Prefetch: they wait for the
	// next free slot instead of for a poll. (A completion's extra tasks go
	// to a poll waiting with a free slot instead, if there is one.) Held
	// tasks are leased to this worker and their leases run while they
	// wait: one whose lease ran out is renewed before it runs, or dropped
	// if another worker took it meanwhile. Defaults to Concurrency/2, at
	// least 1; a negative value holds none (for long tasks, whose leases
	// could run out in the wait).
	Prefetch int
	// PollWait is how long one poll waits on the server for a task before
	// it answers with none (a long poll); it is sent in whole seconds.
	// Defaults to 30 seconds.
	PollWait time.Duration
	// StopTimeout bounds how long [Worker.Run] waits, once its context is
	// done, for the handlers in flight to finish and their results to be
	// sent. After it, their contexts are cancelled with [ErrStopTimeout]
	// and Run returns; their tasks go to other workers when the leases
	// end. Defaults to 30 seconds.
	StopTimeout time.Duration
	// HTTPClient makes the requests. Its Timeout, if any, must be longer
	// than PollWait. Defaults to a client whose transport keeps enough idle
	// connections for Concurrency tasks.
	HTTPClient *http.Client
	// Logger receives the worker's logs. Defaults to warn level on stderr.
	Logger *slog.Logger
}

func (o *Options) validate() error {
	switch {
	case o.Server == "":
		return errors.New("worker: Options.Server is required (the server's URL, e.g. http://127.0.0.1:7070)")
	case o.Concurrency < 0:
		return errors.New("worker: Options.Concurrency must not be negative")
	case o.PollWait < 0:
		return errors.New("worker: Options.PollWait must not be negative")
	case o.StopTimeout < 0:
		return errors.New("worker: Options.StopTimeout must not be negative")
	case o.HTTPClient != nil && o.HTTPClient.Timeout > 0 && o.HTTPClient.Timeout <= o.PollWait:
		return fmt.Errorf("worker: Options.HTTPClient.Timeout (%s) must be longer than PollWait (%s), or a long poll times out", o.HTTPClient.Timeout, o.PollWait)
	}
	return nil
}

// HandlerFunc runs one task. It runs at least once per attempt: after a
// worker dies, or its lease is lost, the task is handed to another worker,
// so anything it does outside Ordo should use t.IdempotencyKey.
//
// Returning a result completes the step. Returning an error fails the
// attempt; the step is retried per its retry policy unless the error is
// marked with [NonRetryable]; [WithCode] gives it a code. ctx is cancelled
// with [ErrLeaseLost] when the server says the lease is lost, and with
// [ErrStopTimeout] when a stopping worker runs out of time.
type HandlerFunc func(ctx context.Context, t *Task) (*Result, error)

// Worker takes tasks from the server's queues and runs them with the
// handlers registered for those queues. Register every handler with
// [Worker.Handle], then call [Worker.Run].
type Worker struct {
	opts     Options
	api      *api
	log      *slog.Logger
	mu       sync.Mutex
	handlers map[string]HandlerFunc
	running  bool
	// ownTransport is the transport New made, whose idle connections Run
	// closes when it returns; nil when the caller gave an HTTPClient.
	ownTransport *http.Transport
}

// New returns a worker of the server opts.Server. It returns an error when
// an option is invalid.
func New(opts Options) (*Worker, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	switch {
	case opts.Prefetch == 0:
		opts.Prefetch = max(opts.Concurrency/2, 1)
	case opts.Prefetch < 0:
		opts.Prefetch = 0
	}
	if opts.PollWait == 0 {
		opts.PollWait = DefaultPollWait
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	if opts.Name == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "worker"
		}
		opts.Name = host + "-" + strconv.Itoa(os.Getpid())
	}
	var ownTransport *http.Transport
	if opts.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// Each task in flight may have a heartbeat and a completion under
		// way, and the poll is one more: keep that many connections open
		// instead of dialling a new one for each request.
		tr.MaxIdleConnsPerHost = 2*opts.Concurrency + 2
		opts.HTTPClient = &http.Client{Transport: tr}
		ownTransport = tr
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	a, err := newAPI(opts.Server, opts.Token, opts.HTTPClient)
	if err != nil {
		return nil, err
	}
	return &Worker{
		opts:         opts,
		api:          a,
		log:          opts.Logger.With("worker", opts.Name),
		handlers:     map[string]HandlerFunc{},
		ownTransport: ownTransport,
	}, nil
}

// Name returns the name the worker polls with.
func (w *Worker) Name() string { return w.opts.Name }

// Handle registers fn as the handler of the tasks of queue (the queue a
// step names in task: {queue: ...}). Registering a queue twice replaces its
// handler. It panics when called while Run is running, or with an empty
// queue or a nil fn.
func (w *Worker) Handle(queue string, fn HandlerFunc) {
	if queue == "" || fn == nil {
		panic("worker: Handle needs a queue name and a handler")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running {
		panic("worker: Handle called while Run is running")
	}
	w.handlers[queue] = fn
}

// Run polls the registered queues and runs their tasks, up to
// Options.Concurrency at a time, until ctx is done. Then it stops polling,
// lets the handlers in flight finish (for at most Options.StopTimeout),
// sends their results and returns nil.
//
// A poll that fails (the server is down or restarting) is retried with
// backoff and logged; it does not end Run. Run returns an error at once
// when no queue is registered, when it is already running, or when the
// server refuses the token (401/403).
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return errors.New("worker: Run is already running")
	}
	if len(w.handlers) == 0 {
		w.mu.Unlock()
		return errors.New("worker: no queue to poll: register a handler with Handle first")
	}
	w.running = true
	handlers := make(map[string]HandlerFunc, len(w.handlers))
	queues := make([]string, 0, len(w.handlers))
	for q, fn := range w.handlers {
		handlers[q] = fn
		queues = append(queues, q)
	}
	sort.Strings(queues)
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
	}()

	// Handlers run on their own context: stopping the worker does not
	// cancel them; only a lost lease or the stop timeout does.
	hctx, cancelAll := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelAll(ErrStopTimeout)

	slots := make(chan struct{}, w.opts.Concurrency)
	var inflight sync.WaitGroup
	pf := newPrefetch(w.opts.Prefetch)
	// runSlot runs t in a slot the caller holds, then the tasks each
	// completion brings, then the tasks held ready; it frees the slot when
	// there are none left.
	runSlot := func(t *Task) {
		defer inflight.Done()
		defer func() { <-slots }()
		for t != nil {
			// A completion brings the next task ready on the worker's
			// queues, if there is one: the slot runs it at once. It may
			// bring more, held for the slots that free up next; the server
			// gives those to a poll waiting for them instead, if any.
			var next *ordoclient.NextRequest
			if ctx.Err() == nil {
				next = &ordoclient.NextRequest{Queues: queues, Worker: w.opts.Name, Max: 1 + pf.room()}
			}
			var more []*Task
			t, more = w.run(hctx, t, handlers, next)
			pf.hold(more)
			for t == nil && hctx.Err() == nil {
				// Whoever holds a task runs the held ones before it gives
				// its slot back, so none is left behind (unless the stop
				// timeout passed: their leases run out and they go to
				// other workers).
				if t = pf.take(); t == nil {
					break
				}
				t = w.renewHeld(hctx, t)
			}
		}
	}
	var runErr error
	backoff := time.Duration(0)
	w.log.InfoContext(ctx, "worker polling", "queues", queues, "concurrency", w.opts.Concurrency)
	for ctx.Err() == nil {
		// Wait for at least one free slot, then ask for as many tasks as
		// there are free slots.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		free := 1
		for free < w.opts.Concurrency {
			select {
			case slots <- struct{}{}:
				free++
				continue
			default:
			}
			break
		}
		// Tasks held ready go first, in the slots just taken.
		for free > 0 {
			t := pf.take()
			if t == nil {
				break
			}
			if t = w.renewHeld(hctx, t); t == nil {
				continue
			}
			free--
			inflight.Add(1)
			go runSlot(t)
		}
		if free == 0 {
			continue
		}
		// A poll may also take tasks to hold, as completions do: a busy
		// worker then polls less often.
		tasks, err := w.api.poll(ctx, queues, w.opts.Name, free+pf.room(), w.opts.PollWait)
		if len(tasks) > free {
			pf.hold(tasks[free:])
			tasks = tasks[:free]
		}
		// Give back the slots no task came for.
		for range free - len(tasks) {
			<-slots
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if isAuth(err) {
				runErr = fmt.Errorf("worker: polling: %w", err)
				break
			}
			backoff = nextBackoff(backoff)
			w.log.WarnContext(ctx, "poll failed; trying again", "error", err, "in", backoff)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			continue
		}
		backoff = 0
		for _, t := range tasks {
			inflight.Add(1)
			go runSlot(t)
		}
	}

	// Stopping: no more polls; wait for the handlers in flight.
	done := make(chan struct{})
	go func() { inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(w.opts.StopTimeout):
		w.log.Warn("stop timeout: cancelling the handlers still running; their tasks go to other workers when the leases end", "timeout", w.opts.StopTimeout)
		cancelAll(ErrStopTimeout)
		<-done
	}
	if w.ownTransport != nil {
		w.ownTransport.CloseIdleConnections()
	}
	w.log.Info("worker stopped")
	return runErr
}

// renewHeld returns a held task about to run, or nil when it is no longer
// this worker's. A task whose lease ran out while it waited for a slot is
// renewed first: if another worker has taken it since, it is dropped rather
// than run twice.
func (w *Worker) renewHeld(ctx context.Context, t *Task) *Task {
	if ctx.Err() != nil {
		return nil
	}
	if t.LeaseUntil.IsZero() || time.Now().Before(t.LeaseUntil) {
		return t
	}
	until, err := w.api.heartbeat(ctx, t.ID, t.Claim)
	switch {
	case err == nil:
		t.LeaseUntil = until
	case isLeaseLost(err):
		w.log.Warn("a held task's lease ran out before a slot was free, and another worker took it",
			"task", t.ID, "instance", t.InstanceID, "step", t.Step, "attempt", t.Attempt)
		return nil
	}
	// Another error: run it; its heartbeat or result tells.
	return t
}

// run runs one task: the handler, with a heartbeat beside it, then the
// completion or failure. With next set, the completion asks for the
// worker's next tasks: run returns the first (nil when none came) and the
// others.
func (w *Worker) run(ctx context.Context, t *Task, handlers map[string]HandlerFunc, next *ordoclient.NextRequest) (*Task, []*Task) {
	log := slog.New(&taskAttrs{h: w.log.Handler(), attrs: []slog.Attr{
		slog.String("task", t.ID), slog.String("instance", t.InstanceID), slog.String("step", t.Step), slog.Int("attempt", t.Attempt),
	}})
	fn := handlers[t.Queue]
	if fn == nil {
		// The server handed out a task of a queue this worker did not ask
		// for; fail it so that it is retried elsewhere.
		w.finish(ctx, log, t, nil, fmt.Errorf("worker %s has no handler for queue %q", w.opts.Name, t.Queue), nil)
		return nil, nil
	}
	tctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if !t.Deadline.IsZero() {
		// The step's timeout bounds the handler, as it bounds one that
		// runs in the engine.
		var cancelDeadline context.CancelFunc
		tctx, cancelDeadline = context.WithDeadline(tctx, t.Deadline)
		defer cancelDeadline()
	}
	// The heartbeat has a context of its own, so that a heartbeat request
	// under way when the handler returns is abandoned rather than waited
	// for.
	hbctx, stopHB := context.WithCancel(tctx)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		w.heartbeat(hbctx, log, t, cancel)
	}()
	res, err := safeCall(tctx, fn, t)
	stopHB()
	<-hbDone
	if errors.Is(context.Cause(tctx), ErrLeaseLost) {
		log.Warn("lease lost while the handler ran; its result is dropped (the task is, or will be, run by another worker)")
		return nil, nil
	}
	taken := w.finish(ctx, log, t, res, err, next)
	if len(taken) == 0 {
		return nil, nil
	}
	return taken[0], taken[1:]
}

func safeCall(ctx context.Context, fn HandlerFunc, t *Task) (res *Result, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return fn(ctx, t)
}

// heartbeat renews t's lease at a third of its length until ctx is done.
// When the server says the lease is lost, it cancels the handler's context
// with ErrLeaseLost.
func (w *Worker) heartbeat(ctx context.Context, log *slog.Logger, t *Task, cancel context.CancelCauseFunc) {
	until := t.LeaseUntil
	for {
		wait := time.Until(until) / 3
		if until.IsZero() {
			wait = 10 * time.Second
		}
		if wait < 50*time.Millisecond {
			wait = 50 * time.Millisecond
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		next, err := w.api.heartbeat(ctx, t.ID, t.Claim)
		switch {
		case err == nil:
			until = next
		case isLeaseLost(err):
			cancel(ErrLeaseLost)
			return
		case ctx.Err() != nil:
			return
		default:
			// The server did not answer: try again sooner, while the lease
			// may still hold.
			log.Warn("heartbeat failed", "error", err)
			if time.Until(until) > 0 {
				until = time.Now().Add(time.Until(until) / 2)
			}
		}
	}
}

// finish sends the handler's result, or its error, for t. It retries when
// the server does not answer, until a minute after the lease ends: after
// that, the task belongs to whoever takes it next. A result the server
// refuses for good (an output a human task's form does not take, say) fails
// the task instead, without retries. A completion sent with next returns
// the next tasks the server took for the worker, if any.
func (w *Worker) finish(ctx context.Context, log *slog.Logger, t *Task, res *Result, herr error, next *ordoclient.NextRequest) []*Task {
	if herr == nil {
		req, err := completion(res)
		if err == nil {
			req.Claim, req.InstanceID = t.Claim, t.InstanceID
			req.Next = next
			var taken []*Task
			err = w.send(ctx, log, t, func(ctx context.Context) error {
				var err error
				taken, err = w.api.complete(ctx, t.ID, req)
				return err
			})
			if err == nil {
				log.Debug("task completed")
				return taken
			}
			if !isPermanent(err) || isLeaseLost(err) {
				return nil
			}
			log.Error("the server refused the task's result; failing the task", "error", err)
			err = NonRetryable(WithCode("result_refused", fmt.Errorf("the server refused the result: %w", err)))
		}
		herr = err
	}
	msg, code, retryable := classify(herr)
	err := w.send(ctx, log, t, func(ctx context.Context) error {
		return w.api.fail(ctx, t, msg, code, retryable)
	})
	if err == nil {
		log.Info("task failed", "error", herr, "code", code, "retryable", retryable)
	} else if isPermanent(err) && !isLeaseLost(err) {
		log.Error("the server refused the task's failure", "error", err)
	}
	return nil
}

// send calls fn until it succeeds, the server refuses it for good, or the
// lease has been over for a minute. It logs a lost lease and returns the
// last error.
func (w *Worker) send(ctx context.Context, log *slog.Logger, t *Task, fn func(context.Context) error) error {
	deadline := t.LeaseUntil.Add(time.Minute)
	backoff := time.Duration(0)
	for {
		err := fn(ctx)
		switch {
		case err == nil:
			return nil
		case isLeaseLost(err):
			log.Warn("late result dropped: the lease was lost and the task went to another worker", "error", err)
			return err
		case isPermanent(err):
			return err
		case ctx.Err() != nil || time.Now().After(deadline):
			log.Error("could not send the task's result; the task runs again when its lease ends", "error", err)
			return err
		}
		backoff = nextBackoff(backoff)
		log.Warn("sending the task's result failed; trying again", "error", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
		}
	}
}

// nextBackoff doubles d from 100ms up to 5s, with jitter.
func nextBackoff(d time.Duration) time.Duration {
	switch {
	case d == 0:
		d = 100 * time.Millisecond
	case d < 5*time.Second:
		d *= 2
	}
	d = min(d, 5*time.Second)
	return d/2 + rand.N(d/2+1)
}

// taskAttrs adds a task's attributes to what is logged about it. Unlike
// slog.Logger.With, which has the handler format them at once, it hands
// them over only when a record is logged: most tasks log nothing.
type taskAttrs struct {
	h     slog.Handler
	attrs []slog.Attr
}

func (a *taskAttrs) Enabled(ctx context.Context, level slog.Level) bool {
	return a.h.Enabled(ctx, level)
}

func (a *taskAttrs) Handle(ctx context.Context, r slog.Record) error {
	return a.h.WithAttrs(a.attrs).Handle(ctx, r)
}

func (a *taskAttrs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &taskAttrs{h: a.h, attrs: append(slices.Clip(a.attrs), attrs...)}
}

func (a *taskAttrs) WithGroup(name string) slog.Handler {
	return a.h.WithAttrs(a.attrs).WithGroup(name)
}
