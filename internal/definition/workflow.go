// Package definition parses, validates and compiles workflow definitions,
// written as YAML/JSON templates or built with the Go DSL, into the graph
// the engine runs.
//
// [Parse] reads a template; [Compile] compiles a [Spec] built in Go. Both
// report every problem at once as a [*ValidationError], and both produce the
// same [Workflow] for the same definition, down to its [Workflow.Hash].
package definition

import (
	"encoding/json"
	"slices"
	"time"
)

// Back-edge iteration limits.
const (
	// DefaultMaxIterations is how often a back-edge (next) is taken when
	// maxIterations is not given.
	DefaultMaxIterations = 10
	// MaxIterationsLimit is the largest maxIterations allowed.
	MaxIterationsLimit = 1000
)

// FailureMode says what happens to an instance when a step fails for good
// and no onError path takes over.
type FailureMode string

// Failure modes.
const (
	// FailureFail marks the instance failed. The default.
	FailureFail FailureMode = "fail"
	// FailureReview parks the instance for manual review.
	FailureReview FailureMode = "review"
	// FailureCompensate runs the compensation steps of the completed
	// steps in reverse order (a saga), then marks the instance compensated.
	FailureCompensate FailureMode = "compensate"
)

// valid reports whether m is a defined failure mode.
func (m FailureMode) valid() bool {
	return m == FailureFail || m == FailureReview || m == FailureCompensate
}

// StepKind says what a step does.
type StepKind string

// Step kinds.
const (
	// KindTask runs a Go handler or hands the work to a worker queue.
	KindTask StepKind = "task"
	// KindHTTP calls an HTTP endpoint.
	KindHTTP StepKind = "http"
	// KindTimer waits for a duration or until a deadline.
	KindTimer StepKind = "timer"
	// KindReceive waits for a correlated message.
	KindReceive StepKind = "receive"
	// KindHuman waits for a person.
	KindHuman StepKind = "human"
	// KindWorkflow runs a child workflow.
	KindWorkflow StepKind = "workflow"
)

// Workflow is a compiled, validated workflow definition. It is immutable
// and safe for concurrent use.
type Workflow struct {
	// Name is the workflow's name.
	Name string
	// Description is free text for people.
	Description string
	// IdempotencyKey, BusinessKey and ConcurrencyKey are CEL expressions
	// over input, nil when absent.
	IdempotencyKey *Expr
	BusinessKey    *Expr
	ConcurrencyKey *Expr
	// Retry is the workflow's default retry policy, resolved.
	Retry RetryPolicy
	// Timeout bounds a whole instance. Zero means no timeout.
	Timeout time.Duration
	// OnFailure says what a failed instance does.
	OnFailure FailureMode
	// MaxConcurrent is the most instances of this workflow that run at
	// once; the others are deferred and start in FIFO order. Zero means no
	// limit.
	MaxConcurrent int
	// Steps are all the steps in topological order of their after
	// dependencies; steps that could go in either order keep file order.
	Steps []*Step
	// Roots are the steps an instance starts with: steps without after
	// that are not only reachable through onError or onTimeout.
	Roots []*Step
	// Hash is the hex SHA-256 of Source. Two definitions with the same Hash
	// are the same definition.
	Hash string
	// Source is the canonical JSON encoding of Spec: the same definition
	// always gives the same bytes, whatever its key order, whether it was
	// written in YAML or JSON or built with the DSL.
	Source []byte
	// Spec is the definition as written. Do not modify it.
	Spec *Spec

	byID map[string]*Step
}

// Step returns the step with the given id, or nil. Compensation steps are
// found by their id too ("charge.compensate").
func (w *Workflow) Step(id string) *Step { return w.byID[id] }

// Step is one compiled step. Exactly one of Task, HTTP, Timer, Receive,
// Human and Child is set, as Kind says.
type Step struct {
	// ID is the step's id. A compensation step's id is its step's id
	// followed by ".compensate".
	ID string
	// Stage is the name of the stage the step was declared in, if any.
	Stage string
	// Index is the step's position in [Workflow.Steps]; -1 for a
	// compensation step, which is not in Steps.
	Index int
	// Kind says what the step does.
	Kind StepKind
	// After are the ids of the steps that must finish before this one
	// starts, including those implied by stages.
	After []string
	// Dependents are the ids of the steps that have this one in After, in
	// the order of Steps.
	Dependents []string
	// ErrorPathOnly is true for steps that only run on an error path: an
	// onError or onTimeout target without after, and the steps after it
	// that no normal path leads to.
	ErrorPathOnly bool

	// Task is set for a task step.
	Task *TaskSpec
	// HTTP is set for an http step.
	HTTP *HTTPSpec
	// Timer is set for a timer step.
	Timer *TimerSpec
	// Receive is set for a receive step.
	Receive *ReceiveSpec
	// Human is set for a human step.
	Human *HumanSpec
	// Child is set for a workflow (child workflow) step.
	Child *ChildSpec
	// Params is the JSON object (canonical JSON) handed to the worker or
	// person that does a task or human step, nil if none.
	Params json.RawMessage

	// When is the step's condition, nil if it always runs. A step whose
	// condition is false is skipped and its dependants still run.
	When *Expr
	// Retry is the step's retry policy, resolved: the step's fields over
	// the workflow's over the defaults.
	Retry RetryPolicy
	// Timeout bounds each attempt of the step. Zero means no timeout.
	Timeout time.Duration
	// Heartbeat is how often the worker of a task step must report that
	// it is alive, or lose its lease. Zero means no heartbeat. Only task
	// steps have one.
	Heartbeat time.Duration
	// OnError are the routes tried, in order, when this step fails after
	// its retries; the first that matches the error's code is taken (see
	// [Step.ErrorRoute]). Nil when the step has no error path.
	OnError []ErrorRoute
	// OnTimeout are the steps taken when this step times out.
	OnTimeout []string
	// Next is the id of an earlier step the workflow goes back to when
	// this step completes (a back-edge), "" if none. The target and every
	// step reachable from it ([Workflow.Reachable]) run again.
	Next string
	// MaxIterations bounds how often the back-edge of Next is taken per
	// instance; 0 when Next is "".
	MaxIterations int
	// Compensate is the step that undoes this one, nil if none.
	Compensate *Step
	// WaitEffects makes dependants wait until this step's side effects
	// have an outcome.
	WaitEffects bool
	// Line and Column are where the step starts in the source; 0 for
	// definitions built with the DSL.
	Line, Column int
}

// HandlerKey returns the name of the Go handler or worker queue that runs a
// task step: Task.Handler if set, else Task.Queue. It returns "" for other
// kinds.
func (s *Step) HandlerKey() string {
	if s.Task == nil {
		return ""
	}
	if s.Task.Handler != "" {
		return s.Task.Handler
	}
	return s.Task.Queue
}

// ErrorRoute is one compiled onError route of a step. It has Next or
// Compensate, not both.
type ErrorRoute struct {
	// Codes are the error codes the route matches; nil matches every
	// error. Only a step's last route has nil Codes.
	Codes []string
	// Next are the ids of the steps the route goes to.
	Next []string
	// Compensate runs the saga: the compensations of the completed steps,
	// in reverse order of completion.
	Compensate bool
}

// Matches reports whether the route applies to an error with the given
// code: it has no codes, or code is one of them.
func (r *ErrorRoute) Matches(code string) bool {
	return r.Codes == nil || slices.Contains(r.Codes, code)
}

// ErrorRoute returns the first of the step's onError routes that matches
// an error with the given code, or nil if none does.
func (s *Step) ErrorRoute(code string) *ErrorRoute {
	for i := range s.OnError {
		if s.OnError[i].Matches(code) {
			return &s.OnError[i]
		}
	}
	return nil
}

// Reachable returns the ids of the steps reachable from the step from,
// itself included, through Dependents and the steps its onError routes
// and onTimeout go to, in the order of Steps. These are the steps a
// back-edge to from runs again. It returns nil if from is not a step of
// Steps.
func (w *Workflow) Reachable(from string) []string {
	start := w.byID[from]
	if start == nil || start.Index < 0 {
		return nil
	}
	seen := make([]bool, len(w.Steps))
	seen[start.Index] = true
	queue := []*Step{start}
	visit := func(ids []string) {
		for _, id := range ids {
			if t := w.byID[id]; t != nil && t.Index >= 0 && !seen[t.Index] {
				seen[t.Index] = true
				queue = append(queue, t)
			}
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		visit(s.Dependents)
		for _, r := range s.OnError {
			visit(r.Next)
		}
		visit(s.OnTimeout)
	}
	var out []string
	for i, ok := range seen {
		if ok {
			out = append(out, w.Steps[i].ID)
		}
	}
	return out
}

// HTTPSpec is a compiled http step.
type HTTPSpec struct {
	// Method is the HTTP method, POST unless given.
	Method string
	// URL is the absolute http or https URL to call.
	URL string
	// Headers are added to the request.
	Headers map[string]string
	// Timeout bounds one request. Zero means the engine's default.
	Timeout time.Duration
}

// TimerSpec is a compiled timer step: exactly one of Duration and Until.
type TimerSpec struct {
	// Duration is how long to wait.
	Duration time.Duration
	// Until gives the deadline, a timestamp or an RFC 3339 string.
	Until *Expr
}

// ReceiveSpec is a compiled receive step.
type ReceiveSpec struct {
	// Message is the name of the message waited for.
	Message string
	// Correlate gives the key a message must carry to be delivered to the
	// instance, nil if none.
	Correlate *Expr
	// Timeout bounds the wait. Zero means no timeout.
	Timeout time.Duration
	// Broadcast delivers a message to every instance waiting for it
	// without consuming it; otherwise one waiting instance consumes it.
	Broadcast bool
}

// HumanSpec is a compiled human step.
type HumanSpec struct {
	// Role is who may complete the step.
	Role string
	// Form is the JSON Schema (canonical JSON) of the data the person
	// enters, nil if none.
	Form json.RawMessage
}

// ChildSpec is a compiled child workflow step.
type ChildSpec struct {
	// Name is the child workflow's name.
	Name string
	// Version is the version of the child workflow to start. Zero means
	// the latest version when the child starts.
	Version int
	// Input gives the child's input, nil to pass this step's input.
	Input *Expr
}

// Parse parses and compiles a YAML or JSON definition. filename is only used
// in error messages and may be empty. It returns a [*ValidationError]
// listing every problem, with its line, if the definition is invalid.
func Parse(data []byte, filename string) (*Workflow, error) {
	spec, dec, syntaxErr := decodeSpec(data)
	if syntaxErr != nil {
		return nil, &ValidationError{Problems: []Problem{{File: filename, Line: syntaxErr.line, Column: syntaxErr.column, Message: syntaxErr.message}}}
	}
	c := newCompiler(spec, filename, dec.positions)
	for _, is := range dec.issues {
		c.report(is)
		c.markFailed(is.path)
	}
	return c.compile()
}

// Compile validates and compiles a definition built in Go. It returns a
// [*ValidationError] listing every problem if the definition is invalid.
// spec is not modified or kept.
func Compile(spec *Spec) (*Workflow, error) {
	if spec == nil {
		return nil, &ValidationError{Problems: []Problem{{Message: "no definition"}}}
	}
	return newCompiler(spec, "", nil).compile()
}
