// Package ordotype holds the types and sentinel errors shared by Ordo's
// engine, its store drivers and its public API. It imports only the standard
// library so that every other package can depend on it without cycles.
package ordotype

import (
	"errors"
	"time"
)

// Sentinel errors. Drivers translate their own errors into these, and callers
// check them with errors.Is.
var (
	// ErrNotFound is returned when an instance, definition, task or other
	// record does not exist.
	ErrNotFound = errors.New("not found")

	// ErrConflict is returned when an append to an instance's journal does
	// not find the sequence number it expected: another writer advanced the
	// instance first. The caller re-reads the instance and decides again.
	ErrConflict = errors.New("conflict: instance was changed concurrently")

	// ErrDuplicate is returned when a completion refers to work that has
	// already been completed (or whose lease was lost): the completion is
	// dropped and nothing is written.
	ErrDuplicate = errors.New("duplicate completion")

	// ErrAlreadyExists is returned when an instance with the same workflow
	// and idempotency key already exists.
	ErrAlreadyExists = errors.New("already exists")

	// ErrInvalid is wrapped by errors about bad input: a malformed
	// definition, invalid JSON input, an unknown workflow.
	ErrInvalid = errors.New("invalid")

	// ErrClosed is returned by operations on a stopped engine or closed store.
	ErrClosed = errors.New("closed")
)

// Status is the status of a workflow instance.
type Status string

// Instance statuses.
const (
	StatusRunning     Status = "running"
	StatusWaiting     Status = "waiting"
	StatusDeferred    Status = "deferred"
	StatusReview      Status = "review"
	StatusCompleted   Status = "completed"
	StatusFailed      Status = "failed"
	StatusCompensated Status = "compensated"
	StatusCancelled   Status = "cancelled"
)

// Terminal reports whether no more work will happen for an instance in this
// status unless an operator resubmits it.
func (s Status) Terminal() bool {
	switch s {
	case StatusCompleted, StatusFailed, StatusCompensated, StatusCancelled:
		return true
	}
	return false
}

// Active reports whether the instance is moving on by itself: running, or
// waiting on a timer, a message, a person or a remote task.
func (s Status) Active() bool { return s == StatusRunning || s == StatusWaiting }

// Valid reports whether s is one of the defined statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusRunning, StatusWaiting, StatusDeferred, StatusReview,
		StatusCompleted, StatusFailed, StatusCompensated, StatusCancelled:
		return true
	}
	return false
}

// StepStatus is the status of one step of an instance.
type StepStatus string

// Step statuses.
const (
	StepPending     StepStatus = "pending"
	StepScheduled   StepStatus = "scheduled"
	StepRunning     StepStatus = "running"
	StepWaiting     StepStatus = "waiting"
	StepCompleted   StepStatus = "completed"
	StepFailed      StepStatus = "failed"
	StepSkipped     StepStatus = "skipped"
	StepCompensated StepStatus = "compensated"
)

// Done reports whether the step has finished in a way that lets the steps
// after it run (completed or skipped).
func (s StepStatus) Done() bool { return s == StepCompleted || s == StepSkipped }

// Active reports whether the step has an attempt under way: scheduled,
// running, or waiting.
func (s StepStatus) Active() bool {
	return s == StepScheduled || s == StepRunning || s == StepWaiting
}

// TaskKind says which role performs a unit of work.
type TaskKind string

// Task kinds.
const (
	// TaskStep runs a step (a Go handler, or a remote worker's queue).
	TaskStep TaskKind = "step"
	// TaskEffect performs a side effect.
	TaskEffect TaskKind = "effect"
	// TaskTimer fires a timer.
	TaskTimer TaskKind = "timer"
	// TaskReceive is a receive step waiting for a message: its queue names
	// the message and correlation key, and it comes due when the wait
	// times out.
	TaskReceive TaskKind = "receive"
	// TaskAdmit admits a deferred instance when a slot of its concurrency
	// key (or of its workflow's maxConcurrent) is free; its queue names the
	// slot group, so that the oldest one per group goes first.
	TaskAdmit TaskKind = "admit"
)

// Clock is how every part of Ordo reads time, so that tests can make a week
// pass in a millisecond.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns a timer that fires once d has passed on this clock.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer created by a [Clock].
type Timer interface {
	// C returns the channel the timer fires on.
	C() <-chan time.Time
	// Stop prevents the timer from firing. It reports whether it stopped it.
	Stop() bool
}
