// Package journal defines the events of an instance's journal and the fold
// that turns a journal into the instance's state. The fold is a pure
// function: the same events always give the same state, which is what lets
// the instance row be a read model and the journal the only truth.
package journal

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ordoflow/ordo/ordotype"
)

// Type is the type of a journal event.
type Type string

// Event types.
const (
	WorkflowStarted     Type = "workflow.started"
	WorkflowCompleted   Type = "workflow.completed"
	WorkflowFailed      Type = "workflow.failed"
	WorkflowParked      Type = "workflow.parked" // status review: waits for an operator
	WorkflowResubmitted Type = "workflow.resubmitted"
	WorkflowCancelled   Type = "workflow.cancelled"
	// workflow.deferred: the instance waits for a slot of its concurrency
	// key or of its workflow's maxConcurrent; workflow.admitted: it got one.
	WorkflowDeferred Type = "workflow.deferred"
	WorkflowAdmitted Type = "workflow.admitted"
	// workflow.compensating: the saga runs the compensations of the
	// completed steps; workflow.compensated: they all ran.
	WorkflowCompensating Type = "workflow.compensating"
	WorkflowCompensated  Type = "workflow.compensated"
	// workflow.looped: a step's back-edge (next) reset the steps from an
	// earlier one, which runs again.
	WorkflowLooped Type = "workflow.looped"

	StepScheduled Type = "step.scheduled"
	StepStarted   Type = "step.started"
	StepCompleted Type = "step.completed"
	StepFailed    Type = "step.failed"
	StepRetrying  Type = "step.retrying"
	StepSkipped   Type = "step.skipped"
	// step.compensated: the step's compensation ran.
	StepCompensated Type = "step.compensated"

	// StepRejected records a result, failure or heartbeat a worker sent for
	// a task whose lease it had lost (the task was claimed again): it is
	// refused and changes nothing else.
	StepRejected Type = "step.rejected"

	EffectScheduled Type = "effect.scheduled"
	EffectCompleted Type = "effect.completed"
	EffectFailed    Type = "effect.failed"
)

// Event is one entry of an instance's journal. Only the fields that matter to
// its Type are set; the rest are omitted from its JSON data.
type Event struct {
	Seq     int64     `json:"-"`
	Type    Type      `json:"-"`
	Step    string    `json:"-"`
	Attempt int       `json:"-"`
	Time    time.Time `json:"-"`

	// workflow.started
	Workflow       string          `json:"workflow,omitempty"`
	Version        int             `json:"version,omitempty"`
	IdempotencyKey string          `json:"idempotencyKey,omitempty"`
	BusinessKey    string          `json:"businessKey,omitempty"`
	ParentID       string          `json:"parentId,omitempty"`
	Input          json.RawMessage `json:"input,omitempty"` // also: the step's input (step.started)
	// TraceParent is the W3C trace context the instance was started under
	// ("00-<trace id>-<span id>-<flags>"), passed on to its outgoing calls.
	TraceParent string `json:"traceParent,omitempty"`

	// step.started; step.completed and step.failed of an attempt that had
	// no step.started event of its own (run in-process).
	StartedAt time.Time `json:"startedAt,omitzero"`

	// step.completed, workflow.completed
	Output json.RawMessage `json:"output,omitempty"`
	// step.completed: the instance state after the step, when it changed.
	State json.RawMessage `json:"state,omitempty"`
	// step.completed: how many side effects the step returned.
	Effects int `json:"effects,omitempty"`

	// step.failed, step.retrying, effect.failed, workflow.failed, workflow.parked
	Error *Error `json:"error,omitempty"`

	// step.scheduled, step.retrying: when the attempt may start.
	DueAt time.Time `json:"dueAt,omitzero"`
	// step.scheduled: the step waits (a timer) rather than runs.
	Waiting bool `json:"waiting,omitempty"`

	// step.skipped, workflow.cancelled, workflow.resubmitted, step.rejected
	Reason string `json:"reason,omitempty"`

	// step.started of a task taken by a worker, step.rejected: the worker
	// and the claim (lease counter) it held or presented.
	Worker string `json:"worker,omitempty"`
	Claim  int    `json:"claim,omitempty"`
	// step.started of a task taken by a worker, and the step.completed or
	// step.failed of a result sent for a task (by a worker or a person):
	// the task's ID, which ties a late result for a task that is done to
	// its step and attempt.
	Task int64 `json:"task,omitempty"`

	// effect.*: the effect's position in the step's list, its type and its
	// idempotency key; EffectAttempt counts the effect's own tries.
	Index         int    `json:"index,omitempty"`
	EffectType    string `json:"effectType,omitempty"`
	EffectKey     string `json:"effectKey,omitempty"`
	EffectAttempt int    `json:"effectAttempt,omitempty"`
	// effect.failed: true when another try is scheduled.
	Retrying bool `json:"retrying,omitempty"`

	// workflow.resubmitted, workflow.looped: the steps reset to pending.
	Reset []string `json:"reset,omitempty"`

	// workflow.started of a child workflow: the parent's step and attempt.
	ParentStep    string `json:"parentStep,omitempty"`
	ParentAttempt int    `json:"parentAttempt,omitempty"`
	// workflow.started: the slot groups the instance must hold to run
	// (its concurrency key, its workflow's maxConcurrent).
	Slots []string `json:"slots,omitempty"`
	// step.started of a workflow step: the child instance's ID.
	Child string `json:"child,omitempty"`
	// step.scheduled of a receive step: the correlation key it waits for.
	Key string `json:"key,omitempty"`
	// step.completed of a receive step: the message that completed it.
	MessageID string `json:"messageId,omitempty"`
	// workflow.looped: how many times the step has gone back.
	Iteration int `json:"iteration,omitempty"`
}

// Error is an error as the journal keeps it.
type Error struct {
	Message   string `json:"message"`
	Code      string `json:"code,omitempty"`
	Step      string `json:"step,omitempty"`
	Retryable bool   `json:"retryable,omitempty"`
}

// State is an instance's state: the fold of its journal.
type State struct {
	ID             string          `json:"id"`
	Workflow       string          `json:"workflow"`
	Version        int             `json:"version"`
	Status         ordotype.Status `json:"status"`
	IdempotencyKey string          `json:"idempotencyKey,omitempty"`
	BusinessKey    string          `json:"businessKey,omitempty"`
	ParentID       string          `json:"parentId,omitempty"`
	// TraceParent is the W3C trace context the instance was started under.
	TraceParent string          `json:"traceParent,omitempty"`
	Input       json.RawMessage `json:"input,omitempty"`
	// Data is the workflow's own state, as returned by step handlers.
	Data   json.RawMessage       `json:"state,omitempty"`
	Output json.RawMessage       `json:"output,omitempty"`
	Error  *Error                `json:"error,omitempty"`
	Steps  map[string]*StepState `json:"steps"`
	// PendingEffects counts side effects without an outcome yet.
	PendingEffects int       `json:"pendingEffects,omitempty"`
	Seq            int64     `json:"seq"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`
	FinishedAt     time.Time `json:"finishedAt,omitzero"`

	// ParentStep and ParentAttempt name the parent's step that started
	// this instance, a child workflow.
	ParentStep    string `json:"parentStep,omitempty"`
	ParentAttempt int    `json:"parentAttempt,omitempty"`
	// Slots are the slot groups the instance holds while it runs.
	Slots []string `json:"slots,omitempty"`
	// Compensating is set while the saga runs.
	Compensating bool `json:"compensating,omitempty"`
	// Messages are the IDs of the messages the instance received.
	Messages []string `json:"messages,omitempty"`
	// Loops counts, per step with a back-edge, how often it went back.
	Loops map[string]int `json:"loops,omitempty"`
}

// StepState is the state of one step of an instance.
type StepState struct {
	Status ordotype.StepStatus `json:"status"`
	// Attempt is the number of the current (or last) attempt. Attempt
	// numbers only grow, so (instance, step, attempt) names one try forever.
	Attempt int `json:"attempt,omitempty"`
	// FirstAttempt is the attempt number the current run of retries started
	// at (1, or later after a resubmit): the retry budget counts from it.
	FirstAttempt   int             `json:"firstAttempt,omitempty"`
	Input          json.RawMessage `json:"input,omitempty"`
	Output         json.RawMessage `json:"output,omitempty"`
	Error          *Error          `json:"error,omitempty"`
	Reason         string          `json:"reason,omitempty"`
	PendingEffects int             `json:"pendingEffects,omitempty"`
	FailedEffects  int             `json:"failedEffects,omitempty"`
	DueAt          time.Time       `json:"dueAt,omitzero"`
	StartedAt      time.Time       `json:"startedAt,omitzero"`
	FinishedAt     time.Time       `json:"finishedAt,omitzero"`
	// Child is the instance a workflow step started.
	Child string `json:"child,omitempty"`
	// Key is the correlation key a receive step waits for.
	Key string `json:"key,omitempty"`
	// MessageID is the message that completed a receive step.
	MessageID string `json:"messageId,omitempty"`
	// CompletedSeq is the seq of the step's step.completed event: the
	// saga compensates in reverse order of it.
	CompletedSeq int64 `json:"completedSeq,omitempty"`
}

// Step returns the state of step id, creating a pending one if needed.
func (s *State) Step(id string) *StepState {
	if s.Steps == nil {
		s.Steps = make(map[string]*StepState)
	}
	st, ok := s.Steps[id]
	if !ok {
		st = &StepState{Status: ordotype.StepPending}
		s.Steps[id] = st
	}
	return st
}

// Clone returns a deep copy of s. Raw JSON values are shared: they are never
// modified in place.
func (s *State) Clone() *State {
	c := *s
	if s.Error != nil {
		e := *s.Error
		c.Error = &e
	}
	if s.Loops != nil {
		c.Loops = make(map[string]int, len(s.Loops))
		for k, v := range s.Loops {
			c.Loops[k] = v
		}
	}
	c.Messages = s.Messages[:len(s.Messages):len(s.Messages)]
	c.Steps = make(map[string]*StepState, len(s.Steps))
	for id, st := range s.Steps {
		cp := *st
		c.Steps[id] = &cp
	}
	return &c
}

// Fold folds a whole journal into a state. The instance ID is taken from the
// caller because events do not repeat it.
func Fold(id string, events []*Event) (*State, error) {
	s := &State{ID: id}
	for _, e := range events {
		if err := Apply(s, e); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Apply applies one event to s. It returns an error when the event does not
// follow s (wrong sequence number, unknown type), never because of its content.
func Apply(s *State, e *Event) error {
	if e.Seq != s.Seq+1 {
		return fmt.Errorf("journal: event %d (%s) does not follow sequence %d", e.Seq, e.Type, s.Seq)
	}
	s.Seq = e.Seq
	s.UpdatedAt = e.Time
	switch e.Type {
	case WorkflowStarted:
		s.Workflow = e.Workflow
		s.Version = e.Version
		s.IdempotencyKey = e.IdempotencyKey
		s.BusinessKey = e.BusinessKey
		s.ParentID = e.ParentID
		s.TraceParent = e.TraceParent
		s.Input = e.Input
		s.Status = ordotype.StatusRunning
		s.CreatedAt = e.Time
		s.ParentStep = e.ParentStep
		s.ParentAttempt = e.ParentAttempt
		s.Slots = e.Slots
	case WorkflowDeferred:
		s.Status = ordotype.StatusDeferred
	case WorkflowAdmitted:
		s.Status = ordotype.StatusRunning
	case WorkflowCompensating:
		s.Compensating = true
		s.Error = e.Error
	case WorkflowCompensated:
		s.Status = ordotype.StatusCompensated
		s.Compensating = false
		s.FinishedAt = e.Time
	case StepCompensated:
		st := s.Step(e.Step)
		st.Status = ordotype.StepCompensated
	case WorkflowLooped:
		if s.Loops == nil {
			s.Loops = make(map[string]int)
		}
		s.Loops[e.Step] = e.Iteration
		for _, id := range e.Reset {
			st := s.Step(id)
			*st = StepState{Status: ordotype.StepPending, Attempt: st.Attempt}
		}
	case WorkflowCompleted:
		s.Status = ordotype.StatusCompleted
		s.Output = e.Output
		s.FinishedAt = e.Time
	case WorkflowFailed:
		s.Status = ordotype.StatusFailed
		s.Error = e.Error
		s.FinishedAt = e.Time
	case WorkflowParked:
		s.Status = ordotype.StatusReview
		s.Error = e.Error
	case WorkflowCancelled:
		s.Status = ordotype.StatusCancelled
		s.FinishedAt = e.Time
		if e.Reason != "" {
			s.Error = &Error{Message: e.Reason, Code: "cancelled"}
		}
	case WorkflowResubmitted:
		s.Status = ordotype.StatusRunning
		if !s.Compensating {
			s.Error = nil
		}
		s.FinishedAt = time.Time{}
		s.Output = nil
		if len(e.Input) > 0 {
			s.Input = e.Input
		}
		for _, id := range e.Reset {
			st := s.Step(id)
			*st = StepState{Status: ordotype.StepPending, Attempt: st.Attempt}
		}
	case StepScheduled, StepRetrying:
		st := s.Step(e.Step)
		if e.Type == StepScheduled {
			st.FirstAttempt = e.Attempt
			st.Error = nil
		}
		st.Status = ordotype.StepScheduled
		if e.Waiting {
			st.Status = ordotype.StepWaiting
		}
		st.Attempt = e.Attempt
		st.DueAt = e.DueAt
		st.Input = e.Input
		st.Key = e.Key
		st.Child = ""
	case StepStarted:
		st := s.Step(e.Step)
		st.Status = ordotype.StepRunning
		st.Attempt = e.Attempt
		st.StartedAt = e.StartedAt
		if e.Child != "" {
			// The step waits for its child workflow.
			st.Status = ordotype.StepWaiting
			st.Child = e.Child
		}
	case StepCompleted:
		st := s.Step(e.Step)
		if !e.StartedAt.IsZero() {
			st.StartedAt = e.StartedAt
		}
		st.Status = ordotype.StepCompleted
		st.Attempt = e.Attempt
		st.Output = e.Output
		st.Error = nil
		st.FinishedAt = e.Time
		st.PendingEffects += e.Effects
		s.PendingEffects += e.Effects
		st.CompletedSeq = e.Seq
		if e.MessageID != "" {
			st.MessageID = e.MessageID
			s.Messages = append(s.Messages, e.MessageID)
		}
		if len(e.State) > 0 {
			s.Data = e.State
		}
	case StepFailed:
		st := s.Step(e.Step)
		if !e.StartedAt.IsZero() {
			st.StartedAt = e.StartedAt
		}
		st.Status = ordotype.StepFailed
		st.Attempt = e.Attempt
		st.Error = e.Error
		st.FinishedAt = e.Time
	case StepSkipped:
		st := s.Step(e.Step)
		st.Status = ordotype.StepSkipped
		st.Reason = e.Reason
		st.Input = e.Input
		st.FinishedAt = e.Time
	case StepRejected:
		// A record only: the refused result changes nothing.
	case EffectScheduled:
		// Counted by step.completed; the event records the effect's key.
	case EffectCompleted:
		st := s.Step(e.Step)
		st.PendingEffects--
		s.PendingEffects--
	case EffectFailed:
		if !e.Retrying {
			st := s.Step(e.Step)
			st.PendingEffects--
			st.FailedEffects++
			s.PendingEffects--
		}
	default:
		return fmt.Errorf("journal: unknown event type %q at %d", e.Type, e.Seq)
	}
	s.settle()
	return nil
}

// settle sets an active instance's status from its steps: running while a
// step is scheduled or running, waiting when its only active steps wait.
func (s *State) settle() {
	if !s.Status.Active() {
		return
	}
	waiting := false
	for _, st := range s.Steps {
		switch st.Status {
		case ordotype.StepScheduled, ordotype.StepRunning:
			s.Status = ordotype.StatusRunning
			return
		case ordotype.StepWaiting:
			waiting = true
		}
	}
	if waiting {
		s.Status = ordotype.StatusWaiting
	} else {
		s.Status = ordotype.StatusRunning
	}
}

// MarshalData encodes the type-specific fields of e as the JSON kept in the
// store's event row.
func MarshalData(e *Event) []byte {
	return e.AppendData(make([]byte, 0, 64+len(e.Input)+len(e.Output)+len(e.State)))
}

// UnmarshalData decodes an event row's JSON into e's type-specific fields.
func UnmarshalData(data []byte, e *Event) error {
	if len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, e)
}
