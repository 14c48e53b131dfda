package worker

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/ordoflow/ordo/ordoclient"
)

// api is the worker's side of the task routes, over [ordoclient.Client].
type api struct {
	c *ordoclient.Client
}

func newAPI(server, token string, hc *http.Client) (*api, error) {
	c, err := ordoclient.New(server, &ordoclient.Options{Token: token, HTTPClient: hc, UserAgent: "ordo-worker"})
	if err != nil {
		return nil, err
	}
	return &api{c: c}, nil
}

func (a *api) poll(ctx context.Context, queues []string, name string, max int, wait time.Duration) ([]*Task, error) {
	secs := int((wait + time.Second - 1) / time.Second)
	// A poll that outlasts its wait by far is stuck: give up on it.
	ctx, cancel := context.WithTimeout(ctx, wait+requestTimeout)
	defer cancel()
	list, err := a.c.PollTasks(ctx, &ordoclient.PollRequest{Queues: queues, Worker: name, Max: max, WaitSeconds: secs})
	if err != nil {
		return nil, err
	}
	out := make([]*Task, len(list))
	for i := range list {
		out[i] = taskOf(&list[i])
	}
	return out, nil
}

func taskOf(t *ordoclient.Task) *Task {
	wt := &Task{
		ID:             t.ID,
		Claim:          t.Claim,
		InstanceID:     t.InstanceID,
		Workflow:       t.Workflow,
		Version:        t.Version,
		Step:           t.Step,
		Queue:          t.Queue,
		Command:        t.Command,
		Attempt:        t.Attempt,
		IdempotencyKey: t.IdempotencyKey,
		Input:          t.Input,
		WorkflowInput:  t.WorkflowInput,
		State:          t.State,
		Kind:           t.Kind,
		Role:           t.Role,
		Form:           t.Form,
		TraceParent:    t.TraceParent,
		Params:         t.Params,
	}
	if t.LeaseUntil != nil {
		wt.LeaseUntil = *t.LeaseUntil
	}
	if t.Deadline != nil {
		wt.Deadline = *t.Deadline
	}
	return wt
}

// requestTimeout bounds a heartbeat, completion or failure request (and
// a poll beyond its wait): one that takes longer is abandoned and tried
// again.
const requestTimeout = 30 * time.Second

func (a *api) heartbeat(ctx context.Context, id string, claim int) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return a.c.HeartbeatTask(ctx, id, claim)
}

// complete sends a completion and returns the tasks the server took for
// the worker with it (req.Next).
func (a *api) complete(ctx context.Context, id string, req *ordoclient.CompleteRequest) ([]*Task, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	res, err := a.c.CompleteTaskNext(ctx, id, req)
	if err != nil {
		return nil, err
	}
	out := make([]*Task, len(res.Next))
	for i := range res.Next {
		out[i] = taskOf(&res.Next[i])
	}
	return out, nil
}

func (a *api) fail(ctx context.Context, t *Task, msg, code string, retryable bool) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return a.c.FailTask(ctx, t.ID, &ordoclient.FailRequest{Claim: t.Claim, InstanceID: t.InstanceID, Error: &ordoclient.TaskError{Message: msg, Code: code, Retryable: retryable}})
}

// completion turns a handler's result into a completion request.
func completion(res *Result) (*ordoclient.CompleteRequest, error) {
	req := &ordoclient.CompleteRequest{}
	if res == nil {
		return req, nil
	}
	var err error
	if req.Output, err = rawJSON("output", res.Output); err != nil {
		return nil, err
	}
	if req.State, err = rawJSON("state", res.State); err != nil {
		return nil, err
	}
	for i, e := range res.Effects {
		if e.Type == "" {
			return nil, NonRetryable(errors.New("effect " + strconv.Itoa(i) + " has no type"))
		}
		p, err := rawJSON("effect "+strconv.Itoa(i)+" payload", e.Payload)
		if err != nil {
			return nil, err
		}
		req.Effects = append(req.Effects, ordoclient.Effect{Type: e.Type, Payload: p})
	}
	return req, nil
}

// isLeaseLost reports whether the server said the task is no longer this
// worker's: its lease was lost, or the task is gone.
func isLeaseLost(err error) bool {
	return ordoclient.IsCode(err, ordoclient.CodeLeaseLost) || ordoclient.IsCode(err, ordoclient.CodeTaskNotFound)
}

// isAuth reports whether the server refused the token.
func isAuth(err error) bool { return errors.Is(err, ordoclient.ErrUnauthorized) }

// isPermanent reports whether the server refused a request in a way that
// sending it again will not change (a 4xx other than 408 and 429).
func isPermanent(err error) bool {
	var e *ordoclient.Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}
