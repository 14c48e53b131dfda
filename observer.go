package ordo

import (
	"time"

	"github.com/ordoflow/ordo/internal/engine"
	"github.com/ordoflow/ordo/internal/journal"
)

// Observer is told what the engine commits, to feed metrics (package
// server turns it into Prometheus metrics) or anything else that counts.
// Set it in [Config.Observer]; a nil func is skipped, and a nil Observer
// costs nothing.
//
// The funcs are called on the engine's goroutines right after the commit
// they describe, once per commit in the process that made it (an instance
// moved by another process is told there). They must be quick and must not
// block: hand slow work to a goroutine of your own.
type Observer struct {
	// InstanceStatus is called when an instance's status changes, and when
	// it starts (From is "").
	InstanceStatus func(InstanceStatusChange)
	// StepEnded is called when an attempt of a step ends, completed or
	// failed (whether or not it will be retried).
	StepEnded func(StepEnded)
	// EffectFailed is called when a try of a side effect fails.
	EffectFailed func(EffectFailed)
}

// InstanceStatusChange is an instance moving from one status to another.
type InstanceStatusChange struct {
	InstanceID string
	Workflow   string
	Version    int
	From, To   Status
	// CreatedAt is when the instance started; At is when it changed.
	CreatedAt, At time.Time
}

// StepEnded is the end of one attempt of a step.
type StepEnded struct {
	InstanceID string
	Workflow   string
	Step       string
	Attempt    int
	// Status is StepCompleted or StepFailed.
	Status StepStatus
	// Err is the attempt's error when it failed.
	Err *Error
	// StartedAt is when the attempt started (zero if unknown) and
	// FinishedAt when it ended.
	StartedAt, FinishedAt time.Time
}

// EffectFailed is a failed try of a side effect.
type EffectFailed struct {
	InstanceID string
	Workflow   string
	Step       string
	// Type is the side effect's type (http, log, or one registered with
	// [Engine.HandleEffect]).
	Type    string
	Attempt int
	// Retrying is true when another try is scheduled.
	Retrying bool
	Err      *Error
}

// hook returns the engine's observer for o, or nil when o has no func.
func (o *Observer) hook() engine.Observer {
	if o == nil || (o.InstanceStatus == nil && o.StepEnded == nil && o.EffectFailed == nil) {
		return nil
	}
	obs := *o
	return func(before, after *journal.State, events []*journal.Event) {
		if obs.InstanceStatus != nil {
			var from Status
			if before != nil {
				from = before.Status
			}
			if from != after.Status {
				at := after.UpdatedAt
				if after.Status.Terminal() && !after.FinishedAt.IsZero() {
					at = after.FinishedAt
				}
				obs.InstanceStatus(InstanceStatusChange{
					InstanceID: after.ID, Workflow: after.Workflow, Version: after.Version,
					From: from, To: after.Status, CreatedAt: after.CreatedAt, At: at,
				})
			}
		}
		if obs.StepEnded == nil && obs.EffectFailed == nil {
			return
		}
		for _, ev := range events {
			switch ev.Type {
			case journal.StepCompleted, journal.StepFailed:
				if obs.StepEnded == nil {
					continue
				}
				started := ev.StartedAt
				if started.IsZero() && before != nil {
					// A worker's attempt: its start is journaled by step.started.
					if ss := before.Steps[ev.Step]; ss != nil && ss.Attempt == ev.Attempt {
						started = ss.StartedAt
					}
				}
				status := StepCompleted
				if ev.Type == journal.StepFailed {
					status = StepFailed
				}
				obs.StepEnded(StepEnded{
					InstanceID: after.ID, Workflow: after.Workflow, Step: ev.Step, Attempt: ev.Attempt,
					Status: status, Err: publicError(ev.Error), StartedAt: started, FinishedAt: ev.Time,
				})
			case journal.EffectFailed:
				if obs.EffectFailed != nil {
					obs.EffectFailed(EffectFailed{
						InstanceID: after.ID, Workflow: after.Workflow, Step: ev.Step, Type: ev.EffectType,
						Attempt: ev.EffectAttempt, Retrying: ev.Retrying, Err: publicError(ev.Error),
					})
				}
			}
		}
	}
}
