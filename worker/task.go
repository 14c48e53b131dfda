package worker

import (
	"encoding/json"
	"fmt"
	"time"
)

// Task is one attempt of a workflow step that the server handed to this
// worker, under a lease that the worker renews while the handler runs.
type Task struct {
	// ID identifies the task on the server.
	ID string
	// Claim counts how many times the task was handed out; the worker
	// presents it when it completes or fails the task, so a completion
	// from an earlier, expired claim is refused.
	Claim int
	// InstanceID, Workflow and Version identify the workflow instance.
	InstanceID string
	Workflow   string
	Version    int
	// Step is the step's id in the definition.
	Step string
	// Queue is the queue the task was taken from.
	Queue string
	// Command is the step's task.command: it lets one queue serve several
	// operations (charge, refund). Empty when the step gives none.
	Command string
	// Attempt counts the tries of this step, from 1.
	Attempt int
	// IdempotencyKey is stable for one attempt of one step of one instance
	// (instance/step/attempt), also when the task is handed out again after
	// a lease expired: pass it to the services the handler calls.
	IdempotencyKey string
	// Input is the step's input, JSON: the workflow input for a first step,
	// the output of the step before it, or for a join an object of the
	// outputs of the steps before it, keyed by step id.
	Input json.RawMessage
	// WorkflowInput is the input the instance was started with.
	WorkflowInput json.RawMessage
	// State is the workflow's state as the steps before left it.
	State json.RawMessage
	// LeaseUntil is when the lease ends unless it is renewed; the worker
	// renews it while the handler runs.
	LeaseUntil time.Time
	// Deadline is when the task times out by its step's timeout (zero
	// when the step has none): the handler's context ends then, and a
	// result sent later is refused (the attempt fails with code timeout).
	Deadline time.Time
	// Kind is "task" for a task step, "human" for a human step.
	Kind string
	// Role and Form are set for human steps: the assignee role and the JSON
	// Schema the completion's output must satisfy.
	Role string
	Form json.RawMessage
	// TraceParent is the W3C trace context the instance was started under
	// ("" when none). Send it as the traceparent header of the calls the
	// handler makes, or continue the trace from it, so that the work shows
	// in the instance's trace.
	TraceParent string
	// Params are the step's params from the definition: fixed data for the
	// worker, a JSON object (nil when the step has none).
	Params json.RawMessage
}

// Bind decodes the step input into v. A decoding error is
// [NonRetryable]: the same input will not decode better next time.
func (t *Task) Bind(v any) error { return unmarshal("step input", t.Input, v) }

// BindState decodes the workflow state into v (left unchanged when there is
// no state yet).
func (t *Task) BindState(v any) error { return unmarshal("state", t.State, v) }

// BindWorkflowInput decodes the workflow input into v.
func (t *Task) BindWorkflowInput(v any) error {
	return unmarshal("workflow input", t.WorkflowInput, v)
}

func unmarshal(what string, raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return NonRetryable(fmt.Errorf("decoding %s: %w", what, err))
	}
	return nil
}

// Result is what a handler returns: the step's output (the input of the
// steps after it), the workflow's new state (nil leaves it unchanged) and
// side effects for the server to perform once the step is committed. Output
// and State are JSON (json.RawMessage, []byte) or any value encoding/json
// can marshal. A nil *Result completes the step with no output.
type Result struct {
	Output  any
	State   any
	Effects []Effect
}

// Effect is a side effect for the server to perform after the step is
// committed, at least once, with an idempotency key that stays the same
// across its retries: "http" (see [HTTPEffect]), "log" (see [LogEffect]) or
// any type the server's engine has an interpreter for.
type Effect struct {
	Type    string
	Payload any
}

// HTTPEffect returns a side effect that makes the server call url with body
// as JSON and the effect's idempotency key in the Idempotency-Key header. A
// non-2xx answer is a failure; 5xx, 408 and 429 are retried.
func HTTPEffect(method, url string, body any) Effect {
	return Effect{Type: "http", Payload: map[string]any{"method": method, "url": url, "body": body}}
}

// LogEffect returns a side effect that makes the server write msg to its
// log at info level, with fields.
func LogEffect(msg string, fields map[string]any) Effect {
	return Effect{Type: "log", Payload: map[string]any{"message": msg, "fields": fields}}
}

// rawJSON turns a Result field into JSON: nil stays nil, []byte and
// json.RawMessage are taken as they are (and must be valid JSON), anything
// else is marshalled.
func rawJSON(what string, v any) (json.RawMessage, error) {
	var raw []byte
	switch x := v.(type) {
	case nil:
		return nil, nil
	case json.RawMessage:
		raw = x
	case []byte:
		raw = x
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil, NonRetryable(fmt.Errorf("encoding %s: %w", what, err))
		}
		return b, nil
	}
	if len(raw) == 0 {
		return nil, nil
	}
	if !json.Valid(raw) {
		return nil, NonRetryable(fmt.Errorf("%s is not valid JSON", what))
	}
	return raw, nil
}
