package definition

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Spec is a workflow definition as written, before compilation: the YAML/JSON
// template decoded into Go values. Its canonical JSON encoding is
// [Workflow.Source]. The builder DSL fills one in and hands it to [Compile].
//
// A workflow has steps, stages or both. Steps come first in file order,
// followed by the steps of each stage in turn.
type Spec struct {
	// Workflow is the workflow's name: [a-z0-9][a-z0-9._-]*, at most 128
	// characters. Required.
	Workflow string `json:"workflow" yaml:"workflow"`
	// Description is free text for people.
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// IdempotencyKey is a CEL expression over input giving a string: a
	// second start with the same key returns the first instance.
	IdempotencyKey string `json:"idempotencyKey,omitempty" yaml:"idempotencyKey,omitempty"`
	// BusinessKey is a CEL expression over input giving the string shown
	// in instance lists.
	BusinessKey string `json:"businessKey,omitempty" yaml:"businessKey,omitempty"`
	// ConcurrencyKey is a CEL expression over input: one running instance
	// per key value.
	ConcurrencyKey string `json:"concurrencyKey,omitempty" yaml:"concurrencyKey,omitempty"`
	// Retry is the default retry policy of every step.
	Retry *SpecRetry `json:"retry,omitempty" yaml:"retry,omitempty"`
	// Timeout bounds a whole instance. Zero means no timeout.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// OnFailure says what a failed instance does. Defaults to [FailureFail].
	OnFailure FailureMode `json:"onFailure,omitempty" yaml:"onFailure,omitempty"`
	// MaxConcurrent is the most instances of this workflow that run at
	// once; the others are deferred and start in FIFO order. Zero means no
	// limit.
	MaxConcurrent int `json:"maxConcurrent,omitempty" yaml:"maxConcurrent,omitempty"`
	// Steps are the steps outside any stage.
	Steps []SpecStep `json:"steps,omitempty" yaml:"steps,omitempty"`
	// Stages are serial groups of steps.
	Stages []SpecStage `json:"stages,omitempty" yaml:"stages,omitempty"`
}

// SpecStage is a named group of steps. Stages run in series: a step of a
// stage that has no dependency inside its own stage comes after every step
// of the stage before.
type SpecStage struct {
	// Name is shown with the stage's steps. Required and unique.
	Name string `json:"name" yaml:"name"`
	// Steps are the stage's steps.
	Steps []SpecStep `json:"steps,omitempty" yaml:"steps,omitempty"`
}

// SpecStep is one step as written. Exactly one of Task, HTTP, Timer,
// Receive, Human and Workflow is set.
type SpecStep struct {
	// ID names the step: [A-Za-z0-9][A-Za-z0-9_-]*, at most 128
	// characters, unique in the workflow. Required, except in a
	// compensation step, where it is not allowed.
	ID string `json:"id,omitempty" yaml:"id,omitempty"`
	// After lists the steps that must finish before this one starts.
	After StringList `json:"after,omitempty" yaml:"after,omitempty"`
	// When is a CEL condition; when false the step is skipped.
	When string `json:"when,omitempty" yaml:"when,omitempty"`
	// Task runs a Go handler or hands the step to a worker queue.
	Task *TaskSpec `json:"task,omitempty" yaml:"task,omitempty"`
	// HTTP calls an HTTP endpoint.
	HTTP *SpecHTTP `json:"http,omitempty" yaml:"http,omitempty"`
	// Timer waits for a duration or until a deadline.
	Timer *SpecTimer `json:"timer,omitempty" yaml:"timer,omitempty"`
	// Receive waits for a correlated message.
	Receive *SpecReceive `json:"receive,omitempty" yaml:"receive,omitempty"`
	// Human waits for a person to complete a form.
	Human *SpecHuman `json:"human,omitempty" yaml:"human,omitempty"`
	// Workflow runs a child workflow.
	Workflow *SpecChild `json:"workflow,omitempty" yaml:"workflow,omitempty"`
	// Retry overrides the workflow's retry policy field by field.
	Retry *SpecRetry `json:"retry,omitempty" yaml:"retry,omitempty"`
	// Timeout bounds each attempt of the step. Zero means no timeout.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Heartbeat is how often the worker of a task step must report that
	// it is alive; when it does not, its lease ends and the task is handed
	// to another worker. Zero means no heartbeat. Only for task steps.
	Heartbeat Duration `json:"heartbeat,omitempty" yaml:"heartbeat,omitempty"`
	// OnError routes the errors this step fails with after its retries.
	OnError ErrorRoutes `json:"onError,omitempty" yaml:"onError,omitempty"`
	// OnTimeout lists the steps taken when this step times out.
	OnTimeout StringList `json:"onTimeout,omitempty" yaml:"onTimeout,omitempty"`
	// Next is a back-edge: when this step completes, the workflow goes
	// back to the named earlier step, which runs again with every step
	// after it.
	Next string `json:"next,omitempty" yaml:"next,omitempty"`
	// MaxIterations bounds how often the back-edge of Next is taken, from
	// 1 to 1000. Nil means [DefaultMaxIterations]. Only with Next.
	MaxIterations *int `json:"maxIterations,omitempty" yaml:"maxIterations,omitempty"`
	// Compensate is the step that undoes this one when the workflow
	// compensates. It has no id, after, onError, onTimeout, next or
	// compensate.
	Compensate *SpecStep `json:"compensate,omitempty" yaml:"compensate,omitempty"`
	// WaitEffects makes dependants wait until this step's side effects
	// have an outcome.
	WaitEffects bool `json:"waitEffects,omitempty" yaml:"waitEffects,omitempty"`
	// Params is a JSON object handed as is to the worker or person that
	// does a task or human step, with the task. Only task and human steps
	// take params.
	Params json.RawMessage `json:"params,omitempty" yaml:"params,omitempty"`
}

// SpecRetry is a retry policy as written. Nil fields inherit the workflow's
// policy, then the built-in defaults of [RetryPolicy].
type SpecRetry struct {
	// MaxAttempts is the total number of attempts, at least 1.
	MaxAttempts *int `json:"maxAttempts,omitempty" yaml:"maxAttempts,omitempty"`
	// InitialInterval is the delay before the first retry, positive.
	InitialInterval *Duration `json:"initialInterval,omitempty" yaml:"initialInterval,omitempty"`
	// BackoffFactor multiplies the delay after each retry, at least 1.
	BackoffFactor *float64 `json:"backoffFactor,omitempty" yaml:"backoffFactor,omitempty"`
	// MaxInterval caps the delay, not less than InitialInterval.
	MaxInterval *Duration `json:"maxInterval,omitempty" yaml:"maxInterval,omitempty"`
	// Jitter is the random fraction, in [0, 1], added to or taken from
	// each delay.
	Jitter *float64 `json:"jitter,omitempty" yaml:"jitter,omitempty"`
}

// TaskSpec says who performs a task step: a Go handler registered with the
// engine, or a worker queue. It is used both as written and compiled.
type TaskSpec struct {
	// Handler is the name of a registered Go handler.
	Handler string `json:"handler,omitempty" yaml:"handler,omitempty"`
	// Queue is the worker queue the task is offered on.
	Queue string `json:"queue,omitempty" yaml:"queue,omitempty"`
	// Command is passed to the handler or worker, so that one queue can
	// serve several operations (charge, refund).
	Command string `json:"command,omitempty" yaml:"command,omitempty"`
}

// SpecHTTP is an HTTP step as written.
type SpecHTTP struct {
	// Method is the HTTP method. Defaults to POST.
	Method string `json:"method,omitempty" yaml:"method,omitempty"`
	// URL is the absolute http or https URL to call. Required.
	URL string `json:"url" yaml:"url"`
	// Headers are added to the request.
	Headers map[string]string `json:"headers,omitempty" yaml:"headers,omitempty"`
	// Timeout bounds one request. Zero means the engine's default.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
}

// SpecTimer is a timer step as written: exactly one of Duration and Until.
type SpecTimer struct {
	// Duration is how long to wait, positive.
	Duration Duration `json:"duration,omitempty" yaml:"duration,omitempty"`
	// Until is a CEL expression giving the deadline (a timestamp or an
	// RFC 3339 string).
	Until string `json:"until,omitempty" yaml:"until,omitempty"`
}

// SpecReceive is a receive step as written.
type SpecReceive struct {
	// Message is the name of the message waited for. Required.
	Message string `json:"message" yaml:"message"`
	// Correlate is a CEL expression giving the key a message must carry
	// to be delivered to this instance.
	Correlate string `json:"correlate,omitempty" yaml:"correlate,omitempty"`
	// Timeout bounds the wait. Zero means no timeout.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Broadcast delivers a message to every instance waiting for it
	// without consuming it. Otherwise one waiting instance consumes it.
	Broadcast bool `json:"broadcast,omitempty" yaml:"broadcast,omitempty"`
}

// SpecHuman is a human step as written.
type SpecHuman struct {
	// Role is who may complete the step. Required.
	Role string `json:"role" yaml:"role"`
	// Form is a JSON Schema object describing the data the person enters.
	Form json.RawMessage `json:"form,omitempty" yaml:"form,omitempty"`
}

// MarshalYAML encodes the step with its form as YAML rather than bytes.
func (h SpecHuman) MarshalYAML() (any, error) {
	var form any
	if len(h.Form) > 0 {
		if err := json.Unmarshal(h.Form, &form); err != nil {
			return nil, fmt.Errorf("encoding form: %w", err)
		}
	}
	return struct {
		Role string `yaml:"role"`
		Form any    `yaml:"form,omitempty"`
	}{h.Role, form}, nil
}

// SpecChild is a child workflow step as written.
type SpecChild struct {
	// Name is the child workflow's name. Required.
	Name string `json:"name" yaml:"name"`
	// Version pins the child to a deployed version of the workflow. Zero
	// means the latest version at the time the child starts.
	Version int `json:"version,omitempty" yaml:"version,omitempty"`
	// Input is a CEL expression giving the child's input. When empty the
	// child gets this step's input.
	Input string `json:"input,omitempty" yaml:"input,omitempty"`
}

// Duration is a [time.Duration] written as a string: a Go duration ("90s",
// "1h30m") or an ISO 8601 duration ("PT2H", "P7D", "P1DT12H"). It encodes
// canonically in Go's form, so "60s", "1m" and "PT1M" encode alike.
type Duration time.Duration

// ParseDuration parses a Go or ISO 8601 duration. Negative durations,
// years and months are rejected.
func ParseDuration(s string) (Duration, error) {
	d, err := parseDuration(s)
	return Duration(d), err
}

// String returns the duration in Go's form, e.g. "1m30s".
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON encodes the duration as a string in Go's form.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON decodes a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("duration must be a string such as 30s or PT30S")
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML encodes the duration as a string in Go's form.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// StringList is a list of strings that may be written as a single string:
// "after: charge" is "after: [charge]".
type StringList []string

// UnmarshalJSON decodes a string or an array of strings.
func (l *StringList) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*l = StringList{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return fmt.Errorf("must be a string or a list of strings")
	}
	*l = list
	return nil
}

// ErrorRoutes is a step's onError as written: routes tried in order when
// the step fails after its retries. It may be written as a step id or a
// list of step ids, which is one route without codes ("onError: x" is
// "onError: [{next: [x]}]"), or as a list of [SpecErrorRoute].
//
// It encodes in the short form when it is one route without codes that
// goes to steps, and as a list of routes otherwise, so that both spellings
// of the same routes give the same canonical JSON.
type ErrorRoutes []SpecErrorRoute

// SpecErrorRoute is one onError route as written. It has Next or
// Compensate, not both.
type SpecErrorRoute struct {
	// Codes are the error codes the route matches. Nil matches every
	// error; only the last route may leave it out.
	Codes StringList `json:"codes,omitempty" yaml:"codes,omitempty"`
	// Next lists the steps the route goes to.
	Next StringList `json:"next,omitempty" yaml:"next,omitempty"`
	// Compensate runs the saga: the compensations of the completed steps,
	// in reverse order.
	Compensate bool `json:"compensate,omitempty" yaml:"compensate,omitempty"`
}

// short reports whether the routes can be written as a list of step ids:
// one route without codes that goes to steps.
func (r ErrorRoutes) short() bool {
	return len(r) == 1 && r[0].Codes == nil && !r[0].Compensate && len(r[0].Next) > 0
}

// MarshalJSON encodes the routes as a list of step ids when they are one
// route without codes, else as a list of routes.
func (r ErrorRoutes) MarshalJSON() ([]byte, error) {
	if r.short() {
		return json.Marshal([]string(r[0].Next))
	}
	return json.Marshal([]SpecErrorRoute(r))
}

// UnmarshalJSON decodes a step id, a list of step ids or a list of routes.
func (r *ErrorRoutes) UnmarshalJSON(b []byte) error {
	var ids StringList
	if err := json.Unmarshal(b, &ids); err == nil {
		*r = nil
		if len(ids) > 0 {
			*r = ErrorRoutes{{Next: ids}}
		}
		return nil
	}
	var routes []SpecErrorRoute
	if err := json.Unmarshal(b, &routes); err != nil {
		return fmt.Errorf("must be a step id, a list of step ids or a list of routes")
	}
	*r = routes
	return nil
}

// MarshalYAML encodes the routes as MarshalJSON does.
func (r ErrorRoutes) MarshalYAML() (any, error) {
	if r.short() {
		return []string(r[0].Next), nil
	}
	return []SpecErrorRoute(r), nil
}
