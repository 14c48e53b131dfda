package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/internal/effects"
	"github.com/ordoflow/ordo/internal/executor"
	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// Log attribute keys.
const (
	logInstance = "ordo.instance.id"
	logStep     = "ordo.step.id"
	logAttempt  = "ordo.step.attempt"
	logTask     = "ordo.task.id"
)

func runnable(st *journal.State, t *ordostore.Task) bool {
	if st.Status.Terminal() {
		return false
	}
	ss := st.Steps[t.StepID]
	return ss != nil && ss.Attempt == t.Attempt && ss.Status.Active()
}

// runStep runs one leased step task and commits its result.
func (e *Engine) runStep(ctx context.Context, t *ordostore.Task) { e.runStepOn(ctx, t, nil) }

// runStepOn is runStep with the instance's stored row already read (nil:
// read it, or take it from the cache). It reports whether the task is
// settled: its completion committed, or found done already. When it is
// not, the task is still in the store, to be run again.
func (e *Engine) runStepOn(ctx context.Context, t *ordostore.Task, row *ordostore.Instance) bool {
	if run := e.control(t.Queue); run != nil {
		run(ctx, t)
		return true
	}
	e.m.stepsRun.Add(1)
	def, st, err := e.loadRow(ctx, t.InstanceID, row)
	if err != nil && isTransient(err) {
		def, st, err = e.loadRetrying(ctx, t.InstanceID, false)
	}
	if err == nil && !runnable(st, t) {
		def, st, err = e.loadRetrying(ctx, t.InstanceID, true) // the cache may be behind
	}
	if err != nil {
		e.log.ErrorContext(ctx, "loading instance for step", logInstance, t.InstanceID, logTask, t.ID, "error", err)
		return false // the lease runs out and the task is claimed again
	}
	ctx = withTraceParent(ctx, st.TraceParent)
	ref := &ordostore.TaskRef{ID: t.ID, Claim: t.Claim}
	step := def.Step(t.StepID)
	var cmd executor.Command
	if !runnable(st, t) || step == nil {
		// Out of date: complete the task without running it.
		cmd = executor.StepDone{Step: t.StepID, Attempt: -1}
	} else {
		sctx, end := e.startSpan(ctx, st, "ordo.step "+t.StepID, t)
		done := e.invoke(sctx, st, step, t)
		end(done.Err)
		cmd = done
	}
	if err := e.applyRetrying(ctx, def, st, cmd, ref); err != nil {
		if !errors.Is(err, ordotype.ErrClosed) {
			e.log.ErrorContext(ctx, "committing step result", logInstance, t.InstanceID, logStep, t.StepID, logAttempt, t.Attempt, "error", err)
		}
		return false
	}
	if done, ok := cmd.(executor.StepDone); ok && done.Attempt > 0 && e.log.Enabled(ctx, slog.LevelDebug) {
		e.logStepDone(ctx, t, done)
	}
	return true
}

// logStepDone writes a debug line about a step attempt that ended.
func (e *Engine) logStepDone(ctx context.Context, t *ordostore.Task, done executor.StepDone) {
	attrs := []slog.Attr{
		slog.String(logInstance, t.InstanceID), slog.String(logStep, t.StepID), slog.Int(logAttempt, t.Attempt),
		slog.Duration("duration", e.clock.Now().Sub(done.StartedAt)),
	}
	if done.Err != nil {
		attrs = append(attrs, slog.String("error", done.Err.Message), slog.String("code", done.Err.Code))
		e.log.LogAttrs(ctx, slog.LevelDebug, "step attempt failed", attrs...)
		return
	}
	e.log.LogAttrs(ctx, slog.LevelDebug, "step attempt completed", attrs...)
}

// invoke runs the step's handler (or built-in) and turns what it returns
// into a StepDone.
func (e *Engine) invoke(ctx context.Context, st *journal.State, step *definition.Step, t *ordostore.Task) executor.StepDone {
	ss := st.Steps[step.ID]
	call := &Call{
		InstanceID:     st.ID,
		Workflow:       st.Workflow,
		Version:        st.Version,
		Step:           step.ID,
		Attempt:        t.Attempt,
		IdempotencyKey: executor.StepKey(st.ID, step.ID, t.Attempt),
		Input:          ss.Input,
		WorkflowInput:  st.Input,
		State:          st.Data,
		Spec:           step,
	}
	done := executor.StepDone{Step: step.ID, Attempt: t.Attempt, StartedAt: e.clock.Now().UTC()}
	var fn StepFunc
	switch step.Kind {
	case definition.KindTimer:
		fn = timerStep
	case definition.KindHTTP:
		fn = e.httpStep
	default:
		e.mu.RLock()
		fn = e.handlers[t.Queue]
		e.mu.RUnlock()
	}
	if fn == nil {
		done.Err = &journal.Error{Message: fmt.Sprintf("no handler registered for %q", t.Queue), Code: "no_handler", Retryable: true}
		return done
	}
	if step.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, step.Timeout)
		defer cancel()
	}
	out, err := safeCall(ctx, fn, call)
	if err == nil {
		err = e.checkEffects(out.Effects)
	}
	if err != nil {
		done.Err = classify(err)
		if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
			done.Err.Code = "timeout"
		}
		return done
	}
	done.Output, done.State, done.Effects = out.Output, out.State, out.Effects
	return done
}

func (e *Engine) checkEffects(effs []executor.Effect) error {
	if len(effs) == 0 {
		return nil
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	for i, eff := range effs {
		if _, ok := e.effectFns[eff.Type]; !ok {
			return NonRetryable(fmt.Errorf("side effect %d: no interpreter registered for type %q", i, eff.Type))
		}
	}
	return nil
}

// httpStep runs a built-in http step: the step input is POSTed (or sent
// with the step's method) and the JSON response body is the step's output.
func (e *Engine) httpStep(ctx context.Context, c *Call) (*Outcome, error) {
	out, err := effects.CallHTTP(ctx, e.http, &effects.HTTPRequest{
		Method: c.Spec.HTTP.Method, URL: c.Spec.HTTP.URL, Headers: c.Spec.HTTP.Headers,
		Body: c.Input, IdempotencyKey: c.IdempotencyKey, Timeout: c.Spec.HTTP.Timeout,
	})
	if err != nil {
		return nil, err
	}
	return &Outcome{Output: out}, nil
}

// timerStep completes a timer step: its task only runs once the timer is due.
func timerStep(context.Context, *Call) (*Outcome, error) { return &Outcome{}, nil }

func safeCall(ctx context.Context, fn StepFunc, call *Call) (out *Outcome, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("step handler panicked: %v\n%s", r, debug.Stack())
		}
	}()
	out, err = fn(ctx, call)
	if err == nil && out == nil {
		out = &Outcome{}
	}
	if err == nil && out.Output != nil && !json.Valid(out.Output) {
		err = NonRetryable(errors.New("step handler returned an output that is not valid JSON"))
	}
	if err == nil && out.State != nil && !json.Valid(out.State) {
		err = NonRetryable(errors.New("step handler returned a state that is not valid JSON"))
	}
	return out, err
}

// runEffect performs one try of a side effect and journals its outcome.
func (e *Engine) runEffect(ctx context.Context, t *ordostore.Task) {
	e.m.effectsRun.Add(1)
	// The instance is loaded first: the effect runs in its trace.
	def, st, lerr := e.loadRetrying(ctx, t.InstanceID, false)
	if lerr != nil {
		e.log.ErrorContext(ctx, "loading instance for side effect", logInstance, t.InstanceID, logTask, t.ID, "error", lerr)
		return
	}
	ctx = withTraceParent(ctx, st.TraceParent)
	var et executor.EffectTask
	var err error
	if uerr := json.Unmarshal(t.Payload, &et); uerr != nil {
		err = NonRetryable(fmt.Errorf("decoding side effect: %w", uerr))
	} else {
		e.mu.RLock()
		fn := e.effectFns[et.Type]
		e.mu.RUnlock()
		if fn == nil {
			err = NonRetryable(fmt.Errorf("no interpreter registered for side effect type %q", et.Type))
		} else {
			sctx, end := e.startSpan(ctx, st, "ordo.effect "+et.Type, t)
			err = safeEffect(sctx, fn, &EffectCall{
				InstanceID: t.InstanceID, Step: t.StepID, Index: et.Index, Type: et.Type,
				Payload: et.Payload, IdempotencyKey: et.Key, Attempt: t.Attempt,
			})
			if err != nil {
				end(&journal.Error{Message: err.Error()})
			} else {
				end(nil)
			}
		}
	}
	cmd := executor.EffectDone{
		Step: t.StepID, Index: et.Index, Type: et.Type, Key: et.Key, Attempt: t.Attempt, Payload: t.Payload,
	}
	if err != nil {
		cmd.Err = classify(err)
		e.m.effectFailures.Add(1)
		e.log.WarnContext(ctx, "side effect failed", logInstance, t.InstanceID, logStep, t.StepID, "effect", et.Type, "attempt", t.Attempt, "error", err)
	}
	if err := e.applyRetrying(ctx, def, st, cmd, &ordostore.TaskRef{ID: t.ID, Claim: t.Claim}); err != nil && !errors.Is(err, ordotype.ErrClosed) {
		e.log.ErrorContext(ctx, "committing side effect outcome", logInstance, t.InstanceID, logStep, t.StepID, "error", err)
	}
}

func safeEffect(ctx context.Context, fn EffectFunc, call *EffectCall) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("side effect interpreter panicked: %v", r)
		}
	}()
	return fn(ctx, call)
}

// Error classification. Errors returned by handlers and interpreters are
// retryable unless they say otherwise through these interfaces.
type (
	retryabler interface{ Retryable() bool }
	coder      interface{ ErrorCode() string }
)

func classify(err error) *journal.Error {
	je := &journal.Error{Message: err.Error(), Retryable: true}
	var r retryabler
	if errors.As(err, &r) {
		je.Retryable = r.Retryable()
	}
	var c coder
	if errors.As(err, &c) {
		je.Code = c.ErrorCode()
	}
	return je
}

// NonRetryable marks err as not worth retrying.
func NonRetryable(err error) error { return &nonRetryable{err} }

type nonRetryable struct{ err error }

func (e *nonRetryable) Error() string   { return e.err.Error() }
func (e *nonRetryable) Unwrap() error   { return e.err }
func (e *nonRetryable) Retryable() bool { return false }
