package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordotype"
)

// Limits of a poll.
const (
	maxPollTasks = 100
	maxPollWait  = 60
)

// pollTasks: POST /api/v1/tasks/poll. It answers as soon as a task is
// claimed, or with an empty list after waitSeconds (at most 60).
func (s *Server) pollTasks(w http.ResponseWriter, r *http.Request) error {
	var req ordoclient.PollRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := checkTake("", req.Queues, req.Worker, req.Max); err != nil {
		return err
	}
	if req.WaitSeconds < 0 {
		return invalidParam("waitSeconds", "waitSeconds must be from 0 to %d, not %d", maxPollWait, req.WaitSeconds)
	}
	// A stopping server ends its waiting polls at once, with no task.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.stopCtx, cancel)
	defer stop()
	tasks, err := s.eng.PollTasks(ctx, &ordo.PollParams{
		Queues: req.Queues, Worker: req.Worker, Max: min(req.Max, maxPollTasks),
		Wait: time.Duration(min(req.WaitSeconds, maxPollWait)) * time.Second,
	})
	switch {
	case errors.Is(err, context.Canceled) && r.Context().Err() == nil:
		tasks, err = nil, nil // the server is stopping
	case errors.Is(err, ordotype.ErrInvalid):
		return invalidParam("queues", "%v", err)
	case err != nil:
		return err
	}
	out := ordoclient.TaskList{Tasks: make([]ordoclient.Task, 0, len(tasks))}
	for _, t := range tasks {
		out.Tasks = append(out.Tasks, taskJSON(t))
	}
	writeJSON(w, http.StatusOK, &out)
	return nil
}

// checkTake checks what a worker asks to take, in a poll or (prefix
// "next.") with a completion: the queues, its name and how many tasks.
func checkTake(prefix string, queues []string, worker string, max int) error {
	switch {
	case len(queues) == 0:
		return invalidParam(prefix+"queues", "%squeues must name at least one queue", prefix)
	case strings.TrimSpace(worker) == "":
		return invalidParam(prefix+"worker", "%sworker must name the worker (its tasks are leased to it)", prefix)
	case max < 0:
		return invalidParam(prefix+"max", "%smax must be from 1 to %d (0 means 1), not %d", prefix, maxPollTasks, max)
	}
	for i, q := range queues {
		if q == "" || strings.HasPrefix(q, "ordo.") {
			return invalidParam(prefix+"queues", "%squeues[%d] %q cannot be polled: it is empty or a built-in ordo.* queue", prefix, i, q)
		}
	}
	return nil
}

// taskID reads the {id} path parameter: a task ID is a positive integer.
func taskID(r *http.Request) (int64, error) {
	v := r.PathValue("id")
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, invalidParam("id", "a task id is a positive integer, not %q", v)
	}
	return id, nil
}

// taskError translates the engine's errors about one task; role is the
// role of the caller's token ("" when the server has no tokens).
func taskError(id int64, role Role, err error) error {
	var fe *ordo.FormError
	var ae *ordo.AssigneeError
	switch {
	case errors.As(err, &ae):
		return &apiError{
			code: ordoclient.CodeForbidden,
			message: fmt.Sprintf("task %d is a human task for role %s, which this token does not carry (list the role with the token's: tokens: {TOKEN: [%s, %s]})",
				id, ae.Role, role, ae.Role),
			details: map[string]any{"role": role, "needs": ae.Role},
		}
	case errors.As(err, &fe):
		return &apiError{
			code:    ordoclient.CodeInvalidOutput,
			message: fmt.Sprintf("task %d: %s", id, fe.Error()),
			details: map[string]any{"pointer": fe.Pointer, "message": fe.Message},
		}
	case errors.Is(err, ordo.ErrLeaseLost):
		return &apiError{
			code:    ordoclient.CodeLeaseLost,
			message: fmt.Sprintf("%s (the result is not used)", strings.TrimPrefix(err.Error(), "ordo: ")),
		}
	case errors.Is(err, ordotype.ErrNotFound):
		return errorf(ordoclient.CodeTaskNotFound, "no open task %d", id)
	case errors.Is(err, ordotype.ErrInvalid):
		return invalidParam("body", "%s", strings.TrimPrefix(err.Error(), "ordo: "))
	}
	return err
}

// heartbeatTask: POST /api/v1/tasks/{id}/heartbeat.
func (s *Server) heartbeatTask(w http.ResponseWriter, r *http.Request) error {
	id, err := taskID(r)
	if err != nil {
		return err
	}
	var req ordoclient.HeartbeatRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Claim < 0 {
		return invalidParam("claim", "claim must be the positive claim the task was polled with, not %d", req.Claim)
	}
	until, err := s.eng.HeartbeatTask(r.Context(), id, req.Claim)
	if err != nil {
		return taskError(id, "", err)
	}
	writeJSON(w, http.StatusOK, &ordoclient.HeartbeatResult{LeaseUntil: until})
	return nil
}

// completeTask: POST /api/v1/tasks/{id}/complete.
func (s *Server) completeTask(w http.ResponseWriter, r *http.Request) error {
	id, err := taskID(r)
	if err != nil {
		return err
	}
	var req ordoclient.CompleteRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Claim < 0 {
		return invalidParam("claim", "claim must be the positive claim the task was polled with, not %d", req.Claim)
	}
	c := &ordo.TaskCompletion{InstanceID: req.InstanceID}
	if len(req.Output) > 0 {
		c.Output = req.Output
	}
	if len(req.State) > 0 && string(req.State) != "null" {
		c.State = req.State
	}
	for i, e := range req.Effects {
		if e.Type == "" {
			return invalidParam("effects", "effects[%d].type is required", i)
		}
		se := ordo.SideEffect{Type: e.Type}
		if len(e.Payload) > 0 {
			se.Payload = e.Payload
		}
		c.SideEffects = append(c.SideEffects, se)
	}
	var role Role
	c.Person, role = s.auth.person(r)
	var next *ordo.PollParams
	if n := req.Next; n != nil {
		if err := checkTake("next.", n.Queues, n.Worker, n.Max); err != nil {
			return err
		}
		next = &ordo.PollParams{Queues: n.Queues, Worker: n.Worker, Max: min(n.Max, maxPollTasks)}
	}
	done, err := s.eng.CompleteTaskNext(r.Context(), id, req.Claim, c, next)
	if err != nil {
		return taskError(id, role, err)
	}
	out := &ordoclient.TaskResult{ID: strconv.FormatInt(id, 10), InstanceID: done.InstanceID}
	for _, t := range done.Next {
		out.Next = append(out.Next, taskJSON(t))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// failTask: POST /api/v1/tasks/{id}/fail.
func (s *Server) failTask(w http.ResponseWriter, r *http.Request) error {
	id, err := taskID(r)
	if err != nil {
		return err
	}
	var req ordoclient.FailRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	switch {
	case req.Claim < 0:
		return invalidParam("claim", "claim must be the positive claim the task was polled with, not %d", req.Claim)
	case req.Error == nil || strings.TrimSpace(req.Error.Message) == "":
		return invalidParam("error", "error.message is required: say why the task failed")
	}
	instance := s.taskInstance(r, id)
	f := &ordo.TaskFailure{Message: req.Error.Message, Code: req.Error.Code, Retryable: req.Error.Retryable, InstanceID: req.InstanceID}
	var role Role
	f.Person, role = s.auth.person(r)
	if err := s.eng.FailTask(r.Context(), id, req.Claim, f); err != nil {
		return taskError(id, role, err)
	}
	writeJSON(w, http.StatusOK, &ordoclient.TaskResult{ID: strconv.FormatInt(id, 10), InstanceID: instance})
	return nil
}

// taskInstance returns the instance of a task, or "" when it is unknown.
func (s *Server) taskInstance(r *http.Request, id int64) string {
	if t, err := s.eng.Store().GetTask(r.Context(), id); err == nil {
		return t.InstanceID
	}
	return ""
}

// taskQueryParams are the query parameters GET /api/v1/tasks takes.
var taskQueryParams = map[string]bool{"queue": true, "instance": true, "kind": true, "limit": true, "after": true}

// listTasks: GET /api/v1/tasks.
func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for k := range q {
		if !taskQueryParams[k] {
			return invalidParam(k, "unknown query parameter %q (queue, instance, kind, limit, after)", k)
		}
	}
	p := &ordo.ListTasksParams{Queue: q.Get("queue"), InstanceID: q.Get("instance"), Kind: q.Get("kind"), Limit: defaultListLimit}
	if p.Kind != "" && p.Kind != ordoclient.TaskKindTask && p.Kind != ordoclient.TaskKindHuman {
		return invalidParam("kind", "kind must be task or human, not %q", p.Kind)
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return invalidParam("limit", "limit must be an integer from 1 to %d, not %q", maxListLimit, v)
		}
		p.Limit = n
	}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return invalidParam("after", "after must be a task id (a positive integer), not %q", v)
		}
		p.AfterID = n
	}
	tasks, err := s.eng.ListTasks(r.Context(), p)
	if err != nil {
		return err
	}
	out := ordoclient.TaskList{Tasks: make([]ordoclient.Task, 0, len(tasks))}
	for _, t := range tasks {
		out.Tasks = append(out.Tasks, taskJSON(t))
	}
	writeJSON(w, http.StatusOK, &out)
	return nil
}

// getTask: GET /api/v1/tasks/{id}.
func (s *Server) getTask(w http.ResponseWriter, r *http.Request) error {
	id, err := taskID(r)
	if err != nil {
		return err
	}
	t, err := s.eng.GetTask(r.Context(), id)
	if err != nil {
		return taskError(id, "", err)
	}
	writeJSON(w, http.StatusOK, taskJSON(t))
	return nil
}

// taskJSON converts an open task into its API form.
func taskJSON(t *ordo.OpenTask) ordoclient.Task {
	return ordoclient.Task{
		ID: strconv.FormatInt(t.ID, 10), Claim: t.Claim, InstanceID: t.InstanceID,
		Workflow: t.Workflow, Version: t.Version, Step: t.Step, Queue: t.Queue, Command: t.Command,
		Attempt: t.Attempt, IdempotencyKey: t.IdempotencyKey,
		Input: rawJSON(t.Input), WorkflowInput: rawJSON(t.WorkflowInput), State: rawJSON(t.State),
		LeaseUntil: timePtr(t.LeaseUntil), Deadline: timePtr(t.Deadline), Worker: t.Worker, Kind: t.Kind,
		Role: t.Role, Form: rawJSONOmit(t.Form), CreatedAt: t.CreatedAt, TraceParent: t.TraceParent,
		Params: rawJSONOmit(t.Params),
	}
}
