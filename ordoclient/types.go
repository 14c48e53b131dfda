package ordoclient

import (
	"encoding/json"
	"time"

	"github.com/ordoflow/ordo/ordotype"
)

// DeployResult is the answer to a deploy: the version the definition is
// stored as. Created is false when the definition was identical to the
// latest version, which is then returned and nothing new is stored.
type DeployResult struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	Hash    string `json:"hash"`
	Created bool   `json:"created"`
}

// Definition is a stored, immutable version of a workflow definition.
type Definition struct {
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"createdAt"`
	// Definition is the definition's canonical JSON, a valid template to
	// deploy again.
	Definition json.RawMessage `json:"definition"`
}

// DefinitionList is the answer of GET /api/v1/definitions: the latest
// version of every definition.
type DefinitionList struct {
	Definitions []Definition `json:"definitions"`
}

// StartRequest asks for a new instance of a workflow.
type StartRequest struct {
	// Input is the workflow input, one JSON value. Empty means {}.
	Input json.RawMessage `json:"input,omitempty"`
	// IdempotencyKey overrides the definition's idempotencyKey expression:
	// a second start with the same key returns the first instance.
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
	// BusinessKey overrides the definition's businessKey expression.
	BusinessKey string `json:"businessKey,omitempty"`
	// Version of the definition to start; 0 means the latest.
	Version int `json:"version,omitempty"`
}

// StartResult is the answer to a start. Existing is true when the
// idempotency key had been used and ID is the instance started then.
type StartResult struct {
	ID       string `json:"id"`
	Existing bool   `json:"existing,omitempty"`
}

// Instance is a workflow instance with its steps, as GET
// /api/v1/instances/{id} returns it.
type Instance struct {
	ID             string          `json:"id"`
	Workflow       string          `json:"workflow"`
	Version        int             `json:"version"`
	Status         ordotype.Status `json:"status"`
	BusinessKey    string          `json:"businessKey,omitempty"`
	IdempotencyKey string          `json:"idempotencyKey,omitempty"`
	ParentID       string          `json:"parentId,omitempty"`
	ParentStep     string          `json:"parentStep,omitempty"`
	Input          json.RawMessage `json:"input"`
	State          json.RawMessage `json:"state"`
	Output         json.RawMessage `json:"output"`
	Error          *ErrorInfo      `json:"error"`
	// Steps in the definition's order.
	Steps []Step `json:"steps"`
	// Seq is the sequence number of the instance's last journal event.
	Seq        int64      `json:"seq"`
	CreatedAt  time.Time  `json:"createdAt"`
	UpdatedAt  time.Time  `json:"updatedAt"`
	FinishedAt *time.Time `json:"finishedAt,omitempty"`
}

// Step is one step of an [Instance].
type Step struct {
	ID         string              `json:"id"`
	Status     ordotype.StepStatus `json:"status"`
	Attempt    int                 `json:"attempt"`
	Input      json.RawMessage     `json:"input,omitempty"`
	Output     json.RawMessage     `json:"output,omitempty"`
	Error      *ErrorInfo          `json:"error,omitempty"`
	Reason     string              `json:"reason,omitempty"`
	StartedAt  *time.Time          `json:"startedAt,omitempty"`
	FinishedAt *time.Time          `json:"finishedAt,omitempty"`
	// Child is the instance a workflow step started.
	Child string `json:"child,omitempty"`
	// Key is the correlation key a receive step waits for; MessageID the
	// message that completed it.
	Key       string `json:"key,omitempty"`
	MessageID string `json:"messageId,omitempty"`
}

// ErrorInfo is an error recorded in an instance's journal: why a step or
// the instance failed.
type ErrorInfo struct {
	Message   string `json:"message"`
	Code      string `json:"code,omitempty"`
	Step      string `json:"step,omitempty"`
	Retryable bool   `json:"retryable,omitempty"`
}

// InstanceSummary is an instance as listings show it, without its input,
// state, output and steps.
type InstanceSummary struct {
	ID             string          `json:"id"`
	Workflow       string          `json:"workflow"`
	Version        int             `json:"version"`
	Status         ordotype.Status `json:"status"`
	BusinessKey    string          `json:"businessKey,omitempty"`
	IdempotencyKey string          `json:"idempotencyKey,omitempty"`
	Error          *ErrorInfo      `json:"error,omitempty"`
	CreatedAt      time.Time       `json:"createdAt"`
	UpdatedAt      time.Time       `json:"updatedAt"`
	FinishedAt     *time.Time      `json:"finishedAt,omitempty"`
}

// InstanceList is a page of instances, newest first. Next, when not empty,
// is the cursor of the next page: pass it as [ListParams].Before.
type InstanceList struct {
	Instances []InstanceSummary `json:"instances"`
	Next      string            `json:"next,omitempty"`
}

// Event is one entry of an instance's journal.
type Event struct {
	Seq     int64     `json:"seq"`
	Type    string    `json:"type"`
	Step    string    `json:"step,omitempty"`
	Attempt int       `json:"attempt,omitempty"`
	Time    time.Time `json:"time"`
	// Data holds the event's fields (input, output, state, error...).
	Data json.RawMessage `json:"data,omitempty"`
}

// Journal is an instance's whole history, in order.
type Journal struct {
	Events []Event `json:"events"`
}

// ResubmitRequest restarts an instance that is parked for review or failed.
type ResubmitRequest struct {
	// From is the step to start again from; empty means the steps that
	// failed.
	From string `json:"from,omitempty"`
	// Input, when set, replaces the workflow input.
	Input json.RawMessage `json:"input,omitempty"`
	// Reason is kept in the journal.
	Reason string `json:"reason,omitempty"`
}

// CancelRequest cancels an instance that has not ended.
type CancelRequest struct {
	// Reason is kept in the journal.
	Reason string `json:"reason,omitempty"`
}

// Problem is one problem of a definition that did not validate, in the
// details of a [CodeInvalidDefinition] error.
type Problem struct {
	// Line and Column locate the problem in the source, counting from 1;
	// 0 when unknown.
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Step   string `json:"step,omitempty"`
	Field  string `json:"field,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// ErrorResponse is the body of every error answer:
// {"error": {"code", "number", "message", "details"}}.
type ErrorResponse struct {
	Error *Error `json:"error"`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status string `json:"status"`
}
