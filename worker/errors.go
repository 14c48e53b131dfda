package worker

import (
	"errors"
)

// ErrLeaseLost is the cause (see context.Cause) of a handler's context
// when the server said the task's lease was lost: it expired, and the task
// may already be running on another worker. A handler that sees it should
// stop; whatever it returns is dropped.
var ErrLeaseLost = errors.New("worker: task lease lost")

// ErrStopTimeout is the cause of a handler's context when [Worker.Run] was
// stopped and the handler did not finish within [Options.StopTimeout].
var ErrStopTimeout = errors.New("worker: stopped before the handler finished")

// NonRetryable marks err so that the step fails at once instead of being
// retried: the task is failed with retryable=false. It mirrors
// ordo.NonRetryable; an error made with either is treated the same.
func NonRetryable(err error) error { return &nonRetryable{err} }

type nonRetryable struct{ err error }

func (e *nonRetryable) Error() string   { return e.err.Error() }
func (e *nonRetryable) Unwrap() error   { return e.err }
func (e *nonRetryable) Retryable() bool { return false }

// WithCode attaches an error code to err (e.g. "card_declined"). The code is
// kept in the journal and lets the workflow's error paths tell errors
// apart. It mirrors ordo.WithCode; an error made with either is treated the
// same. Combine it with [NonRetryable] to fail at once:
//
//	return nil, worker.NonRetryable(worker.WithCode("card_declined", err))
func WithCode(code string, err error) error { return &codedError{code: code, err: err} }

type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string     { return e.err.Error() }
func (e *codedError) Unwrap() error     { return e.err }
func (e *codedError) ErrorCode() string { return e.code }

// Error classification, the same as the engine's for in-process handlers:
// an error is retryable unless something in its chain has a Retryable()
// method that says false, and its code is the first ErrorCode() in its
// chain.
type (
	retryabler interface{ Retryable() bool }
	coder      interface{ ErrorCode() string }
)

// classify returns the message, code and retryability of a handler's error.
func classify(err error) (message, code string, retryable bool) {
	retryable = true
	var r retryabler
	if errors.As(err, &r) {
		retryable = r.Retryable()
	}
	var c coder
	if errors.As(err, &c) {
		code = c.ErrorCode()
	}
	return err.Error(), code, retryable
}
