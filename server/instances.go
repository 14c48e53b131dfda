package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordotype"
)

// List limits.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// The times a Unix nanosecond count can hold.
var (
	minStoreTime = time.Unix(0, math.MinInt64)
	maxStoreTime = time.Unix(0, math.MaxInt64)
)

// start: POST /api/v1/workflows/{name}/instances.
func (s *Server) start(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var req ordoclient.StartRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Version < 0 {
		return &apiError{
			code:    ordoclient.CodeInvalidParameter,
			message: fmt.Sprintf("version must be a positive integer (or 0 for the latest), not %d", req.Version),
			details: map[string]any{"parameter": "version"},
		}
	}
	ctx := r.Context()
	var opts []ordo.StartOption
	if req.Version > 0 {
		opts = append(opts, ordo.Version(req.Version))
	}
	if req.BusinessKey != "" {
		opts = append(opts, ordo.BusinessKey(req.BusinessKey))
	}
	if req.IdempotencyKey != "" {
		opts = append(opts, ordo.IdempotencyKey(req.IdempotencyKey))
	}
	var input any
	if len(req.Input) > 0 {
		input = req.Input
	}
	started, err := s.eng.StartInstance(ctx, name, input, opts...)
	if started != nil {
		noteInstance(r, started.ID, "")
	}
	switch {
	case errors.Is(err, ordotype.ErrNotFound):
		if req.Version > 0 {
			return errorf(ordoclient.CodeWorkflowNotFound, "workflow %q has no version %d", name, req.Version)
		}
		return errorf(ordoclient.CodeWorkflowNotFound, "no workflow %q is deployed", name)
	case errors.Is(err, ordotype.ErrInvalid):
		return errorf(ordoclient.CodeInvalidInput, "%v", err)
	case err != nil:
		return err
	}
	if started.Existed {
		writeJSON(w, http.StatusOK, &ordoclient.StartResult{ID: started.ID, Existing: true})
		return nil
	}
	w.Header().Set("Location", "/api/v1/instances/"+url.PathEscape(started.ID))
	writeJSON(w, http.StatusCreated, &ordoclient.StartResult{ID: started.ID})
	return nil
}

// listQueryParams are the query parameters GET /api/v1/instances takes.
var listQueryParams = map[string]bool{
	"workflow": true, "status": true, "businessKey": true,
	"createdAfter": true, "createdBefore": true, "limit": true, "before": true,
}

// listInstances: GET /api/v1/instances.
func (s *Server) listInstances(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for k := range q {
		if !listQueryParams[k] {
			return invalidParam(k, "unknown query parameter %q (workflow, status, businessKey, createdAfter, createdBefore, limit, before)", k)
		}
	}
	p := ordo.ListParams{
		Workflow:    q.Get("workflow"),
		BusinessKey: q.Get("businessKey"),
		BeforeID:    q.Get("before"),
	}
	for _, st := range q["status"] {
		if !ordotype.Status(st).Valid() {
			return invalidParam("status", "unknown status %q (running, waiting, deferred, review, completed, failed, compensated, cancelled)", st)
		}
		p.Statuses = append(p.Statuses, ordotype.Status(st))
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"createdAfter", &p.CreatedAfter}, {"createdBefore", &p.CreatedBefore}} {
		v := q.Get(f.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return invalidParam(f.name, "%s must be an RFC 3339 time like 2006-01-02T15:04:05Z, not %q", f.name, v)
		}
		*f.dst = t
	}
	// The store keeps times as Unix nanoseconds, which cover the years
	// 1678 to 2262: a bound outside that range either filters nothing or
	// everything.
	empty := false
	if !p.CreatedAfter.IsZero() {
		switch {
		case p.CreatedAfter.Before(minStoreTime):
			p.CreatedAfter = time.Time{}
		case p.CreatedAfter.After(maxStoreTime):
			empty = true
		}
	}
	if !p.CreatedBefore.IsZero() {
		switch {
		case p.CreatedBefore.After(maxStoreTime):
			p.CreatedBefore = time.Time{}
		case p.CreatedBefore.Before(minStoreTime):
			empty = true
		}
	}
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return invalidParam("limit", "limit must be an integer from 1 to %d, not %q", maxListLimit, v)
		}
		limit = n
	}
	// One more than asked says whether there is a next page.
	p.Limit = limit + 1
	var list []*ordo.Instance
	if !empty {
		var err error
		if list, err = s.eng.List(r.Context(), &p); err != nil {
			return err
		}
	}
	out := ordoclient.InstanceList{Instances: make([]ordoclient.InstanceSummary, 0, min(len(list), limit))}
	for i, inst := range list {
		if i == limit {
			out.Next = list[i-1].ID
			break
		}
		out.Instances = append(out.Instances, ordoclient.InstanceSummary{
			ID: inst.ID, Workflow: inst.Workflow, Version: inst.Version, Status: inst.Status,
			BusinessKey: inst.BusinessKey, IdempotencyKey: inst.IdempotencyKey, Error: errorInfo(inst.Error),
			CreatedAt: inst.CreatedAt, UpdatedAt: inst.UpdatedAt, FinishedAt: timePtr(inst.FinishedAt),
		})
	}
	writeJSON(w, http.StatusOK, &out)
	return nil
}

func invalidParam(param, format string, args ...any) *apiError {
	return &apiError{
		code:    ordoclient.CodeInvalidParameter,
		message: fmt.Sprintf(format, args...),
		details: map[string]any{"parameter": param},
	}
}

// getInstance: GET /api/v1/instances/{id}.
func (s *Server) getInstance(w http.ResponseWriter, r *http.Request) error {
	inst, err := s.instance(r, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inst)
	return nil
}

// instance returns the API form of an instance, or instance_not_found.
func (s *Server) instance(r *http.Request, id string) (*ordoclient.Instance, error) {
	inst, err := s.eng.Get(r.Context(), id)
	if err != nil {
		return nil, instanceError(id, err)
	}
	return instanceJSON(inst), nil
}

func instanceError(id string, err error) error {
	if errors.Is(err, ordotype.ErrNotFound) {
		return errorf(ordoclient.CodeInstanceNotFound, "no instance %q", id)
	}
	return err
}

// journal: GET /api/v1/instances/{id}/journal.
func (s *Server) journal(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	events, err := s.eng.Journal(r.Context(), id)
	if err != nil {
		return instanceError(id, err)
	}
	out := ordoclient.Journal{Events: make([]ordoclient.Event, len(events))}
	for i, e := range events {
		out.Events[i] = ordoclient.Event{Seq: e.Seq, Type: e.Type, Step: e.Step, Attempt: e.Attempt, Time: e.Time, Data: rawJSONOmit(e.Data)}
	}
	writeJSON(w, http.StatusOK, &out)
	return nil
}

// resubmit: POST /api/v1/instances/{id}/resubmit.
func (s *Server) resubmit(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var req ordoclient.ResubmitRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	inst, err := s.eng.Get(r.Context(), id)
	if err != nil {
		return instanceError(id, err)
	}
	if req.From != "" && inst.Step(req.From) == nil {
		return invalidParam("from", "workflow %s v%d has no step %q", inst.Workflow, inst.Version, req.From)
	}
	opts := &ordo.ResubmitOptions{From: req.From, Reason: req.Reason}
	if len(req.Input) > 0 {
		opts.Input = req.Input
	}
	if err := s.eng.Resubmit(r.Context(), id, opts); err != nil {
		return s.stateError(r, id, "resubmit", "only instances in review or failed can be resubmitted", err)
	}
	return s.writeInstance(w, r, id)
}

// cancel: POST /api/v1/instances/{id}/cancel.
func (s *Server) cancel(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var req ordoclient.CancelRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if err := s.eng.Cancel(r.Context(), id, req.Reason); err != nil {
		return s.stateError(r, id, "cancel", "instances that have ended cannot be cancelled", err)
	}
	return s.writeInstance(w, r, id)
}

// stateError translates the error of an action on an instance:
// instance_not_found, or invalid_state with the instance's status.
func (s *Server) stateError(r *http.Request, id, action, rule string, err error) error {
	if !errors.Is(err, ordotype.ErrInvalid) {
		return instanceError(id, err)
	}
	status := "unknown"
	if inst, gerr := s.eng.Get(r.Context(), id); gerr == nil {
		status = string(inst.Status)
	}
	return &apiError{
		code:    ordoclient.CodeInvalidState,
		message: fmt.Sprintf("cannot %s instance %s: it is %s, and %s", action, id, status, rule),
		details: map[string]any{"status": status},
	}
}

func (s *Server) writeInstance(w http.ResponseWriter, r *http.Request, id string) error {
	inst, err := s.instance(r, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, inst)
	return nil
}

// instanceJSON converts an engine instance into its API form.
func instanceJSON(inst *ordo.Instance) *ordoclient.Instance {
	out := &ordoclient.Instance{
		ID: inst.ID, Workflow: inst.Workflow, Version: inst.Version, Status: inst.Status,
		BusinessKey: inst.BusinessKey, IdempotencyKey: inst.IdempotencyKey, ParentID: inst.ParentID, ParentStep: inst.ParentStep,
		Input: rawJSON(inst.Input), State: rawJSON(inst.State), Output: rawJSON(inst.Output),
		Error: errorInfo(inst.Error), Seq: inst.Seq,
		Steps:     make([]ordoclient.Step, len(inst.Steps)),
		CreatedAt: inst.CreatedAt, UpdatedAt: inst.UpdatedAt, FinishedAt: timePtr(inst.FinishedAt),
	}
	for i, st := range inst.Steps {
		out.Steps[i] = ordoclient.Step{
			ID: st.ID, Status: st.Status, Attempt: st.Attempt,
			Input: rawJSONOmit(st.Input), Output: rawJSONOmit(st.Output), Error: errorInfo(st.Error),
			Reason: st.Reason, StartedAt: timePtr(st.StartedAt), FinishedAt: timePtr(st.FinishedAt),
			Child: st.Child, Key: st.Key, MessageID: st.MessageID,
		}
	}
	return out
}

func errorInfo(e *ordo.Error) *ordoclient.ErrorInfo {
	if e == nil {
		return nil
	}
	return &ordoclient.ErrorInfo{Message: e.Message, Code: e.Code, Step: e.Step, Retryable: e.Retryable}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// rawJSON returns raw, or JSON null when it is empty, so that the field is
// always present.
func rawJSON(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	return raw
}

// rawJSONOmit returns raw, or nil (an omitted field) when it is empty.
func rawJSONOmit(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return nil
	}
	return raw
}
