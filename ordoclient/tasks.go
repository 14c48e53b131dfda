package ordoclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Task kinds, in [Task].Kind.
const (
	// TaskKindTask is a step of a queue that no in-process handler runs: a
	// remote worker polls it, runs it, and completes or fails it.
	TaskKindTask = "task"
	// TaskKindHuman is a human step: it waits until someone completes it
	// with an output that satisfies the step's form.
	TaskKindHuman = "human"
)

// MaxPollWait is the longest a poll waits for a task; the server caps
// [PollRequest].WaitSeconds at it.
const MaxPollWait = 60 * time.Second

// Task is an open task: a remote queue task (leased or not) or a waiting
// human task, as the task routes return it.
type Task struct {
	// ID is the store's task id, as a string.
	ID string `json:"id"`
	// Claim is the lease counter: it grows at each claim, and a heartbeat,
	// completion or failure must present the value it was claimed with.
	Claim      int    `json:"claim"`
	InstanceID string `json:"instanceId"`
	Workflow   string `json:"workflow"`
	Version    int    `json:"version"`
	Step       string `json:"step"`
	Queue      string `json:"queue"`
	Command    string `json:"command,omitempty"`
	Attempt    int    `json:"attempt"`
	// IdempotencyKey is the same for every delivery of one attempt: a
	// worker passes it on to the systems it calls so that a re-delivered
	// task does not act twice.
	IdempotencyKey string          `json:"idempotencyKey"`
	Input          json.RawMessage `json:"input,omitempty"`
	WorkflowInput  json.RawMessage `json:"workflowInput,omitempty"`
	State          json.RawMessage `json:"state,omitempty"`
	// LeaseUntil is when the lease ends; nil when the task is not leased.
	LeaseUntil *time.Time `json:"leaseUntil,omitempty"`
	// Deadline is when the delivery times out by the step's timeout: a
	// result sent later is refused and the attempt fails with code
	// timeout. Nil when the step has no timeout or the task is not leased.
	Deadline *time.Time `json:"deadline,omitempty"`
	// Worker holds the lease; empty when the task is not leased.
	Worker string `json:"worker,omitempty"`
	// Kind is [TaskKindTask] or [TaskKindHuman].
	Kind string `json:"kind"`
	// Role and Form are set for human tasks: who should complete it, and
	// the JSON Schema its output must satisfy.
	Role string          `json:"role,omitempty"`
	Form json.RawMessage `json:"form,omitempty"`
	// CreatedAt is when the task was made.
	CreatedAt time.Time `json:"createdAt"`
	// TraceParent is the W3C trace context of the instance ("" when it
	// was not started in a trace): continue the trace with it, e.g. send
	// it as the traceparent header of the calls the worker makes.
	TraceParent string `json:"traceparent,omitempty"`
	// Params are the step's params from the definition, a JSON object.
	Params json.RawMessage `json:"params,omitempty"`
}

// TaskList is the answer of a poll and of GET /api/v1/tasks.
type TaskList struct {
	Tasks []Task `json:"tasks"`
}

// PollRequest asks for tasks of some queues.
type PollRequest struct {
	// Queues to take tasks from; at least one.
	Queues []string `json:"queues"`
	// Worker names the poller; the tasks are leased to "worker:"+Worker.
	Worker string `json:"worker"`
	// Max is how many tasks to take at most; 0 means 1. The server caps it
	// at 100.
	Max int `json:"max,omitempty"`
	// WaitSeconds is how long to wait for a task when none is ready; 0
	// answers at once. The server caps it at 60.
	WaitSeconds int `json:"waitSeconds,omitempty"`
}

// HeartbeatRequest extends the lease of a claimed task.
type HeartbeatRequest struct {
	Claim int `json:"claim"`
}

// HeartbeatResult is the answer to a heartbeat: the new end of the lease.
type HeartbeatResult struct {
	LeaseUntil time.Time `json:"leaseUntil"`
}

// Effect is a side effect a worker asks the engine to carry out after the
// step is done, e.g. {"type": "http", "payload": {...}}.
type Effect struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// CompleteRequest completes a task.
type CompleteRequest struct {
	// Claim is the lease counter the task was polled with. Human tasks
	// take none.
	Claim int `json:"claim,omitempty"`
	// InstanceID is the instance the task belongs to, as the poll gave
	// it. Optional: when the task is done already, the refused result is
	// journaled on that instance (step.rejected); a task that is open
	// must belong to it.
	InstanceID string `json:"instanceId,omitempty"`
	// Output is the step's output, one JSON value; empty means null. For a
	// human task it must satisfy the step's form.
	Output json.RawMessage `json:"output,omitempty"`
	// State, when set, is the new workflow state.
	State json.RawMessage `json:"state,omitempty"`
	// Effects are side effects to carry out.
	Effects []Effect `json:"effects,omitempty"`
	// Next, from a worker, asks for its next task in the answer: up to
	// Next.Max (0 means 1) of the tasks this completion makes ready on
	// Next.Queues are leased to Next.Worker, journaled as started, and
	// returned in TaskResult.Next, as a poll would return them, without
	// waiting. Human tasks take none.
	Next *NextRequest `json:"next,omitempty"`
}

// NextRequest is a completion's request for the worker's next tasks
// ([CompleteRequest.Next]).
type NextRequest struct {
	Queues []string `json:"queues"`
	Worker string   `json:"worker"`
	Max    int      `json:"max,omitempty"`
}

// TaskError is why a worker failed a task.
type TaskError struct {
	Message string `json:"message"`
	Code    string `json:"code,omitempty"`
	// Retryable lets the step's retry policy run it again; false fails the
	// step at once.
	Retryable bool `json:"retryable,omitempty"`
}

// FailRequest fails a task.
type FailRequest struct {
	Claim int `json:"claim,omitempty"`
	// InstanceID is as in [CompleteRequest].
	InstanceID string     `json:"instanceId,omitempty"`
	Error      *TaskError `json:"error"`
}

// TaskResult is the answer to a completion or failure.
type TaskResult struct {
	ID         string `json:"id"`
	InstanceID string `json:"instanceId"`
	// Next are the tasks a completion took for the worker
	// ([CompleteRequest.Next]), leased to it as if polled.
	Next []Task `json:"next,omitempty"`
}

// ListTasksParams filter [Client.ListTasks]. Zero fields do not filter.
type ListTasksParams struct {
	Queue    string
	Instance string
	// Kind is [TaskKindTask] or [TaskKindHuman].
	Kind string
	// After is a cursor: the ID of the last task of the page before.
	After string
	// Limit is the page size. The server defaults it to 100 and caps it at
	// 1000.
	Limit int
}

// PollTasks takes up to req.Max tasks of req.Queues, waiting up to
// req.WaitSeconds for one; it returns an empty slice when none came. When
// the client's HTTP timeout is shorter than the wait, the wait is shortened
// to fit.
func (c *Client) PollTasks(ctx context.Context, req *PollRequest) ([]Task, error) {
	r := *req
	if to := c.http.Timeout; to > 0 && time.Duration(r.WaitSeconds)*time.Second+5*time.Second > to {
		r.WaitSeconds = max(0, int((to-5*time.Second)/time.Second))
	}
	var res TaskList
	if err := c.doJSON(ctx, http.MethodPost, "/api/v1/tasks/poll", &r, &res); err != nil {
		return nil, err
	}
	if res.Tasks == nil {
		res.Tasks = []Task{}
	}
	return res.Tasks, nil
}

// HeartbeatTask extends the lease of a claimed task and returns its new end.
// Errors: an [*Error] with [CodeLeaseLost] when the task is done or was
// claimed again since.
func (c *Client) HeartbeatTask(ctx context.Context, id string, claim int) (time.Time, error) {
	var res HeartbeatResult
	if err := c.doJSON(ctx, http.MethodPost, "/api/v1/tasks/"+url.PathEscape(id)+"/heartbeat", &HeartbeatRequest{Claim: claim}, &res); err != nil {
		return time.Time{}, err
	}
	return res.LeaseUntil, nil
}

// CompleteTask completes a task with its output. Errors: [CodeLeaseLost]
// for a late or repeated completion (the engine keeps the first),
// [CodeTaskNotFound], [CodeInvalidOutput] when a human task's output does
// not satisfy its form.
func (c *Client) CompleteTask(ctx context.Context, id string, req *CompleteRequest) error {
	_, err := c.CompleteTaskNext(ctx, id, req)
	return err
}

// CompleteTaskNext is [Client.CompleteTask] returning the server's answer:
// with req.Next set, it holds the worker's next tasks.
func (c *Client) CompleteTaskNext(ctx context.Context, id string, req *CompleteRequest) (*TaskResult, error) {
	if req == nil {
		req = &CompleteRequest{}
	}
	var out TaskResult
	if err := c.doJSON(ctx, http.MethodPost, "/api/v1/tasks/"+url.PathEscape(id)+"/complete", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FailTask fails a task. Errors: as [Client.CompleteTask].
func (c *Client) FailTask(ctx context.Context, id string, req *FailRequest) error {
	return c.doJSON(ctx, http.MethodPost, "/api/v1/tasks/"+url.PathEscape(id)+"/fail", req, &TaskResult{})
}

// ListTasks returns open tasks: waiting human tasks and remote queue tasks,
// leased or not, oldest first.
func (c *Client) ListTasks(ctx context.Context, p *ListTasksParams) ([]Task, error) {
	if p == nil {
		p = &ListTasksParams{}
	}
	q := url.Values{}
	if p.Queue != "" {
		q.Set("queue", p.Queue)
	}
	if p.Instance != "" {
		q.Set("instance", p.Instance)
	}
	if p.Kind != "" {
		q.Set("kind", p.Kind)
	}
	if p.After != "" {
		q.Set("after", p.After)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	var res TaskList
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/tasks", q, "", nil, &res); err != nil {
		return nil, err
	}
	if res.Tasks == nil {
		res.Tasks = []Task{}
	}
	return res.Tasks, nil
}

// GetTask returns one open task. Errors: [ordotype.ErrNotFound]
// ([CodeTaskNotFound]) when no open task has this id.
func (c *Client) GetTask(ctx context.Context, id string) (*Task, error) {
	var res Task
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/tasks/"+url.PathEscape(id), nil, "", nil, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
