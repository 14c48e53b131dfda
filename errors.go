package ordo

import (
	"github.com/ordoflow/ordo/internal/engine"
	"github.com/ordoflow/ordo/ordotype"
)

// Errors returned by the engine; check them with errors.Is.
var (
	// ErrNotFound: an unknown instance, workflow or version.
	ErrNotFound = ordotype.ErrNotFound
	// ErrInvalid: bad input (a malformed definition, input that is not
	// JSON, a resubmit of an instance that is running).
	ErrInvalid = ordotype.ErrInvalid
	// ErrClosed: the engine was stopped.
	ErrClosed = ordotype.ErrClosed
)

// NonRetryable marks err so that the step (or side effect) that returned it
// fails at once instead of being retried.
func NonRetryable(err error) error { return engine.NonRetryable(err) }

// WithCode attaches an error code to err. Codes are kept in the journal and
// let error paths tell errors apart.
func WithCode(code string, err error) error { return &codedError{code: code, err: err} }

type codedError struct {
	code string
	err  error
}

func (e *codedError) Error() string     { return e.err.Error() }
func (e *codedError) Unwrap() error     { return e.err }
func (e *codedError) ErrorCode() string { return e.code }

// Status is an instance's status.
type Status = ordotype.Status

// Instance statuses.
const (
	StatusRunning     = ordotype.StatusRunning
	StatusWaiting     = ordotype.StatusWaiting
	StatusDeferred    = ordotype.StatusDeferred
	StatusReview      = ordotype.StatusReview
	StatusCompleted   = ordotype.StatusCompleted
	StatusFailed      = ordotype.StatusFailed
	StatusCompensated = ordotype.StatusCompensated
	StatusCancelled   = ordotype.StatusCancelled
)

// StepStatus is a step's status.
type StepStatus = ordotype.StepStatus

// Step statuses.
const (
	StepPending     = ordotype.StepPending
	StepScheduled   = ordotype.StepScheduled
	StepRunning     = ordotype.StepRunning
	StepWaiting     = ordotype.StepWaiting
	StepCompleted   = ordotype.StepCompleted
	StepFailed      = ordotype.StepFailed
	StepSkipped     = ordotype.StepSkipped
	StepCompensated = ordotype.StepCompensated
)
