package ordo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/ordotype"
)

// Definition is a compiled, validated workflow definition, built with
// [NewWorkflow] or read from a YAML/JSON template with [ParseDefinition] or
// [LoadDefinition]. It is immutable and safe for concurrent use.
type Definition struct {
	w *definition.Workflow
}

// Name returns the workflow's name.
func (d *Definition) Name() string { return d.w.Name }

// Hash returns the hex SHA-256 of [Definition.JSON]. Two definitions with the
// same hash are the same definition, whether they were written in YAML or
// JSON or built in Go.
func (d *Definition) Hash() string { return d.w.Hash }

// JSON returns the definition's canonical JSON encoding: the same definition
// always gives the same bytes. It is a valid template for [ParseDefinition].
func (d *Definition) JSON() []byte { return bytes.Clone(d.w.Source) }

// ValidationError lists every problem found in a definition, each with the
// file, line and column it is at (when read from a template), the step and
// the field. It matches [ordotype.ErrInvalid] with errors.Is.
type ValidationError = definition.ValidationError

// ValidationProblem is one problem of a [ValidationError].
type ValidationProblem = definition.Problem

// ParseDefinition parses and validates a YAML or JSON workflow template.
// filename is only used in error messages and may be empty. An invalid
// definition gives a [*ValidationError] listing every problem.
func ParseDefinition(data []byte, filename string) (*Definition, error) {
	w, err := definition.Parse(data, filename)
	if err != nil {
		return nil, err
	}
	return &Definition{w: w}, nil
}

// LoadDefinition reads and parses the workflow template at path. Besides the
// errors of [ParseDefinition], it returns the error from opening or reading
// the file.
func LoadDefinition(path string) (*Definition, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loading definition: %w", err)
	}
	defer f.Close()
	// Read one byte more than the limit so that Parse reports the size.
	data, err := io.ReadAll(io.LimitReader(f, definition.MaxSourceSize+1))
	if err != nil {
		return nil, fmt.Errorf("loading definition: %w", err)
	}
	return ParseDefinition(data, path)
}

// MustLoadDefinition is like [LoadDefinition] but panics on error. It is
// meant for examples and tests.
func MustLoadDefinition(path string) *Definition {
	d, err := LoadDefinition(path)
	if err != nil {
		panic(err)
	}
	return d
}

// RetryPolicy says how often and how fast a failed step is tried again.
//
// Given to [WorkflowBuilder.Retry] or [StepBuilder.Retry], zero fields are
// not set: a step inherits them from the workflow, and the workflow from the
// defaults (3 attempts, 1s initial interval, factor 2, 1m cap, jitter 0.2).
// Set Jitter to a negative value for no jitter at all.
type RetryPolicy = definition.RetryPolicy

// FailureMode says what happens to an instance when a step fails for good
// and no onError path takes over.
type FailureMode = definition.FailureMode

// Failure modes.
const (
	// FailureFail marks the instance failed. The default.
	FailureFail = definition.FailureFail
	// FailureReview parks the instance for manual review.
	FailureReview = definition.FailureReview
	// FailureCompensate runs the compensation steps of the completed steps
	// in reverse order, then marks the instance compensated.
	FailureCompensate = definition.FailureCompensate
)

// WorkflowBuilder builds a [Definition] in Go. Start one with [NewWorkflow]
// and finish it with [WorkflowBuilder.Build]. The definition it builds is the
// one the equivalent template gives, with the same validation and the same
// [Definition.Hash].
type WorkflowBuilder struct {
	spec  definition.Spec
	steps []*StepBuilder
}

// NewWorkflow starts building a workflow with the given name: lower-case
// letters, digits, '.', '_' and '-'.
func NewWorkflow(name string) *WorkflowBuilder {
	return &WorkflowBuilder{spec: definition.Spec{Workflow: name}}
}

// Description sets free text for people.
func (b *WorkflowBuilder) Description(s string) *WorkflowBuilder {
	b.spec.Description = s
	return b
}

// IdempotencyKey sets a CEL expression over input giving a string: a second
// start with the same key returns the first instance.
func (b *WorkflowBuilder) IdempotencyKey(cel string) *WorkflowBuilder {
	b.spec.IdempotencyKey = cel
	return b
}

// BusinessKey sets a CEL expression over input giving the string shown in
// instance lists.
func (b *WorkflowBuilder) BusinessKey(cel string) *WorkflowBuilder {
	b.spec.BusinessKey = cel
	return b
}

// ConcurrencyKey sets a CEL expression over input giving a string: at most
// one instance per key value runs at a time, and the others are deferred
// and start in FIFO order.
func (b *WorkflowBuilder) ConcurrencyKey(cel string) *WorkflowBuilder {
	b.spec.ConcurrencyKey = cel
	return b
}

// MaxConcurrent sets the most instances of the workflow that run at once;
// the others are deferred and start in FIFO order. Zero means no limit.
func (b *WorkflowBuilder) MaxConcurrent(n int) *WorkflowBuilder {
	b.spec.MaxConcurrent = n
	return b
}

// Retry sets the default retry policy of every step. Zero fields keep the
// defaults; see [RetryPolicy].
func (b *WorkflowBuilder) Retry(p RetryPolicy) *WorkflowBuilder {
	b.spec.Retry = retrySpec(p)
	return b
}

// Timeout bounds a whole instance. Zero means no timeout.
func (b *WorkflowBuilder) Timeout(d time.Duration) *WorkflowBuilder {
	b.spec.Timeout = definition.Duration(d)
	return b
}

// OnFailure sets what a failed instance does. Defaults to [FailureFail].
func (b *WorkflowBuilder) OnFailure(m FailureMode) *WorkflowBuilder {
	b.spec.OnFailure = m
	return b
}

// Step adds a step. Steps keep the order they are added in where their
// dependencies allow it.
func (b *WorkflowBuilder) Step(s *StepBuilder) *WorkflowBuilder {
	b.steps = append(b.steps, s)
	return b
}

// Build validates the workflow and compiles it. An invalid workflow gives a
// [*ValidationError] listing every problem. The builder can be changed and
// built again afterwards.
func (b *WorkflowBuilder) Build() (*Definition, error) {
	spec := b.spec
	spec.Steps = make([]definition.SpecStep, len(b.steps))
	var misused []ValidationProblem
	for i, s := range b.steps {
		if s == nil {
			return nil, fmt.Errorf("building workflow %q: step %d is nil: %w", spec.Workflow, i, ordotype.ErrInvalid)
		}
		spec.Steps[i] = s.build(false)
		misused = append(misused, s.misused...)
		if s.compensate != nil && s.compensate != s {
			for _, p := range s.compensate.misused {
				p.Step, p.Field = s.spec.ID, "compensate."+p.Field
				misused = append(misused, p)
			}
		}
	}
	w, err := definition.Compile(&spec)
	var verr *ValidationError
	switch {
	case len(misused) == 0 && err != nil:
		return nil, err
	case len(misused) > 0 && errors.As(err, &verr):
		return nil, &ValidationError{Problems: append(slices.Clone(verr.Problems), misused...)}
	case len(misused) > 0:
		return nil, &ValidationError{Problems: misused}
	}
	return &Definition{w: w}, nil
}

// MustBuild is like [WorkflowBuilder.Build] but panics on error. It is
// meant for workflows fixed at compile time.
func (b *WorkflowBuilder) MustBuild() *Definition {
	d, err := b.Build()
	if err != nil {
		panic(err)
	}
	return d
}

// StepBuilder builds one step of a [WorkflowBuilder]. Start one with [Task],
// [QueueTask], [HTTPStep], [Timer], [TimerUntil], [Receive], [Human] or
// [ChildWorkflow].
type StepBuilder struct {
	spec       definition.SpecStep
	compensate *StepBuilder
	// misused lists the methods called that do not apply to the step's
	// kind, reported by Build.
	misused []ValidationProblem
}

// Task is a step run by the Go handler registered under handler (template:
// task: {handler: ...}).
func Task(id, handler string) *StepBuilder {
	return &StepBuilder{spec: definition.SpecStep{ID: id, Task: &definition.TaskSpec{Handler: handler}}}
}

// QueueTask is a step offered to remote workers on queue (template:
// task: {queue: ...}).
func QueueTask(id, queue string) *StepBuilder {
	return &StepBuilder{spec: definition.SpecStep{ID: id, Task: &definition.TaskSpec{Queue: queue}}}
}

// HTTPStep is a step that calls url with method (POST when empty).
func HTTPStep(id, method, url string) *StepBuilder {
	return &StepBuilder{spec: definition.SpecStep{ID: id, HTTP: &definition.SpecHTTP{Method: method, URL: url}}}
}

// Timer is a step that waits for d.
func Timer(id string, d time.Duration) *StepBuilder {
	return &StepBuilder{spec: definition.SpecStep{ID: id, Timer: &definition.SpecTimer{Duration: definition.Duration(d)}}}
}

// TimerUntil is a step that waits until the deadline a CEL expression
// gives: a timestamp or an RFC 3339 string (template: timer: {until: ...}).
func TimerUntil(id, cel string) *StepBuilder {
	return &StepBuilder{spec: definition.SpecStep{ID: id, Timer: &definition.SpecTimer{Until: cel}}}
}

// Receive is a step that waits for the message named message (template:
// receive: {message: ...}). Set its correlation key with
// [StepBuilder.Correlate], its timeout with [StepBuilder.ReceiveTimeout].
func Receive(id, message string) *StepBuilder {
	return &StepBuilder{spec: definition.SpecStep{ID: id, Receive: &definition.SpecReceive{Message: message}}}
}

// Human is a step a person with the given role completes through the API
// or the UI (template: human: {role: ...}). Describe what they enter with
// [StepBuilder.Form].
func Human(id, role string) *StepBuilder {
	return &StepBuilder{spec: definition.SpecStep{ID: id, Human: &definition.SpecHuman{Role: role}}}
}

// ChildWorkflow is a step that runs the workflow named name as a child and
// waits for it to end (template: workflow: {name: ...}). By default the
// child runs the latest version with this step's input; see
// [StepBuilder.ChildVersion] and [StepBuilder.ChildInput].
func ChildWorkflow(id, name string) *StepBuilder {
	return &StepBuilder{spec: definition.SpecStep{ID: id, Workflow: &definition.SpecChild{Name: name}}}
}

// misuse records that method was called on a step of another kind.
func (s *StepBuilder) misuse(field, kind, constructor string) {
	s.misused = append(s.misused, ValidationProblem{
		Step: s.spec.ID, Field: field,
		Message: fmt.Sprintf("only a %s step has this; build the step with ordo.%s", kind, constructor),
	})
}

// Command sets the command passed to a task step's handler or worker, so
// that one queue can serve several operations (template: task: {command:
// ...}).
func (s *StepBuilder) Command(c string) *StepBuilder {
	if s.spec.Task == nil {
		s.misuse("task.command", "task", "Task or ordo.QueueTask")
		return s
	}
	t := *s.spec.Task
	t.Command = c
	s.spec.Task = &t
	return s
}

// Correlate sets the CEL expression giving the key a message must carry to
// be delivered to a receive step of this instance.
func (s *StepBuilder) Correlate(cel string) *StepBuilder {
	if s.spec.Receive == nil {
		s.misuse("receive.correlate", "receive", "Receive")
		return s
	}
	r := *s.spec.Receive
	r.Correlate = cel
	s.spec.Receive = &r
	return s
}

// ReceiveTimeout bounds a receive step's wait; when it passes, the
// [StepBuilder.OnTimeout] steps are taken.
func (s *StepBuilder) ReceiveTimeout(d time.Duration) *StepBuilder {
	if s.spec.Receive == nil {
		s.misuse("receive.timeout", "receive", "Receive")
		return s
	}
	r := *s.spec.Receive
	r.Timeout = definition.Duration(d)
	s.spec.Receive = &r
	return s
}

// Broadcast makes a receive step take a message without consuming it:
// every instance waiting for the message gets it.
func (s *StepBuilder) Broadcast() *StepBuilder {
	if s.spec.Receive == nil {
		s.misuse("receive.broadcast", "receive", "Receive")
		return s
	}
	r := *s.spec.Receive
	r.Broadcast = true
	s.spec.Receive = &r
	return s
}

// Form sets the JSON Schema object describing the data the person
// completing a human step enters.
func (s *StepBuilder) Form(schema json.RawMessage) *StepBuilder {
	if s.spec.Human == nil {
		s.misuse("human.form", "human", "Human")
		return s
	}
	h := *s.spec.Human
	h.Form = bytes.Clone(schema)
	s.spec.Human = &h
	return s
}

// ChildInput sets the CEL expression giving a child workflow's input.
func (s *StepBuilder) ChildInput(cel string) *StepBuilder {
	if s.spec.Workflow == nil {
		s.misuse("workflow.input", "workflow", "ChildWorkflow")
		return s
	}
	w := *s.spec.Workflow
	w.Input = cel
	s.spec.Workflow = &w
	return s
}

// ChildVersion pins a child workflow step to a deployed version of the
// child workflow. Zero, the default, starts the latest version at the time
// the child starts.
func (s *StepBuilder) ChildVersion(v int) *StepBuilder {
	if s.spec.Workflow == nil {
		s.misuse("workflow.version", "workflow", "ChildWorkflow")
		return s
	}
	w := *s.spec.Workflow
	w.Version = v
	s.spec.Workflow = &w
	return s
}

// After adds steps that must finish before this one starts.
func (s *StepBuilder) After(ids ...string) *StepBuilder {
	s.spec.After = append(s.spec.After, ids...)
	return s
}

// When sets a CEL condition over input, state and outputs; when it is false
// the step is skipped and its dependants still run.
func (s *StepBuilder) When(cel string) *StepBuilder {
	s.spec.When = cel
	return s
}

// Retry sets the step's retry policy. Zero fields are inherited from the
// workflow; see [RetryPolicy].
func (s *StepBuilder) Retry(p RetryPolicy) *StepBuilder {
	s.spec.Retry = retrySpec(p)
	return s
}

// Timeout bounds the step. Zero means no timeout.
func (s *StepBuilder) Timeout(d time.Duration) *StepBuilder {
	s.spec.Timeout = definition.Duration(d)
	return s
}

// Heartbeat sets how often the worker of a task step must report that it
// is alive; when it does not, its lease ends and the task is handed to
// another worker. Only task steps have a heartbeat.
func (s *StepBuilder) Heartbeat(d time.Duration) *StepBuilder {
	s.spec.Heartbeat = definition.Duration(d)
	return s
}

// OnError adds steps taken when this step fails after its retries with an
// error no earlier [StepBuilder.OnErrorCode] or [StepBuilder.CompensateOn]
// route matches (template: onError: [ids]). Calling it again adds to the
// same steps.
func (s *StepBuilder) OnError(ids ...string) *StepBuilder {
	if len(ids) == 0 {
		return s
	}
	if n := len(s.spec.OnError); n > 0 && s.spec.OnError[n-1].Codes == nil && !s.spec.OnError[n-1].Compensate {
		last := &s.spec.OnError[n-1]
		last.Next = append(slices.Clone(last.Next), ids...)
		return s
	}
	s.spec.OnError = append(s.spec.OnError, definition.SpecErrorRoute{Next: ids})
	return s
}

// OnErrorCode adds an error route: when the step fails after its retries
// with an error whose code is one of codes (see [WithCode]), the steps ids
// are taken (template: onError: [{codes: [...], next: [...]}]). Routes are
// tried in the order they are added. With no codes it is [StepBuilder.OnError].
func (s *StepBuilder) OnErrorCode(codes []string, ids ...string) *StepBuilder {
	if len(codes) == 0 {
		return s.OnError(ids...)
	}
	s.spec.OnError = append(s.spec.OnError, definition.SpecErrorRoute{Codes: routeCodes(codes), Next: ids})
	return s
}

// CompensateOn adds an error route that runs the saga (the compensations
// of the completed steps, in reverse order) when the step fails after its
// retries with one of codes, or with any error when codes are left out
// (template: onError: [{codes: [...], compensate: true}]).
func (s *StepBuilder) CompensateOn(codes ...string) *StepBuilder {
	s.spec.OnError = append(s.spec.OnError, definition.SpecErrorRoute{Codes: routeCodes(codes), Compensate: true})
	return s
}

// routeCodes copies codes; nil when there are none, which matches every
// error.
func routeCodes(codes []string) definition.StringList {
	if len(codes) == 0 {
		return nil
	}
	return slices.Clone(codes)
}

// OnTimeout adds steps taken when this step times out. The step needs a
// [StepBuilder.Timeout] or, for a receive step, a
// [StepBuilder.ReceiveTimeout].
func (s *StepBuilder) OnTimeout(ids ...string) *StepBuilder {
	s.spec.OnTimeout = append(s.spec.OnTimeout, ids...)
	return s
}

// Next makes the step a back-edge: when it completes, the workflow goes
// back to the earlier step id, which runs again with every step after it.
// The back-edge is taken at most maxIterations times (1 to 1000); zero
// means the default, 10.
func (s *StepBuilder) Next(id string, maxIterations int) *StepBuilder {
	s.spec.Next = id
	s.spec.MaxIterations = nil
	if maxIterations != 0 {
		s.spec.MaxIterations = &maxIterations
	}
	return s
}

// Compensate sets the step that undoes this one when the workflow
// compensates. The compensation step has no id, dependencies or error
// paths of its own: build it with an empty id, as in
// Compensate(ordo.Task("", "refund")).
func (s *StepBuilder) Compensate(c *StepBuilder) *StepBuilder {
	s.compensate = c
	return s
}

// WaitEffects makes the step's dependants wait until its side effects have
// an outcome.
func (s *StepBuilder) WaitEffects() *StepBuilder {
	s.spec.WaitEffects = true
	return s
}

// build returns the step's spec, sharing nothing the builder may change.
// nested is true for a compensation step, which may not have one of its
// own: an empty one stands in for it so that validation reports it, without
// following a builder that compensates itself forever.
func (s *StepBuilder) build(nested bool) definition.SpecStep {
	spec := s.spec
	spec.After = slices.Clone(s.spec.After)
	spec.OnTimeout = slices.Clone(s.spec.OnTimeout)
	spec.OnError = slices.Clone(s.spec.OnError)
	for i := range spec.OnError {
		spec.OnError[i].Codes = slices.Clone(spec.OnError[i].Codes)
		spec.OnError[i].Next = slices.Clone(spec.OnError[i].Next)
	}
	if n := s.spec.MaxIterations; n != nil {
		spec.MaxIterations = new(*n)
	}
	switch {
	case s.compensate != nil && nested:
		spec.Compensate = &definition.SpecStep{}
	case s.compensate != nil:
		c := s.compensate.build(true)
		spec.Compensate = &c
	}
	return spec
}

// retrySpec turns a policy into the fields it sets; nil if none.
func retrySpec(p RetryPolicy) *definition.SpecRetry {
	var r definition.SpecRetry
	set := false
	if p.MaxAttempts != 0 {
		r.MaxAttempts, set = &p.MaxAttempts, true
	}
	if p.InitialInterval != 0 {
		d := definition.Duration(p.InitialInterval)
		r.InitialInterval, set = &d, true
	}
	if p.BackoffFactor != 0 {
		r.BackoffFactor, set = &p.BackoffFactor, true
	}
	if p.MaxInterval != 0 {
		d := definition.Duration(p.MaxInterval)
		r.MaxInterval, set = &d, true
	}
	switch {
	case p.Jitter < 0:
		zero := 0.0
		r.Jitter, set = &zero, true
	case p.Jitter != 0:
		r.Jitter, set = &p.Jitter, true
	}
	if !set {
		return nil
	}
	return &r
}
