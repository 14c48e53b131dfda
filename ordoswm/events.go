package ordoswm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordotype"
)

// Event names of the Serverless Workflow Manager.
const (
	EventStartWorkflow = "StartWorkflow"
	EventTaskCompleted = "TaskCompleted"
	EventTaskFailed    = "TaskFailed"
	EventTaskPending   = "TaskPending"
)

// MaxEventSize is the largest event [ParseEvent] reads, in bytes.
const MaxEventSize = 1 << 20

// Event is an SWM workflow event.
type Event struct {
	// Name is the event_name: one of the Event* constants.
	Name string
	// BusinessRefNo identifies the instance (its business key and
	// idempotency key). Required.
	BusinessRefNo string
	// ComponentName is the component_name: the workflows converted from
	// templates of this component are the ones the event may be for.
	ComponentName string
	// WorkflowName, when set, names the workflow instead: an SWM
	// workflow_name ("Deliver Pizza") or an Ordo workflow name. An
	// extension of SWM's events. StartWorkflow needs this or
	// ComponentName.
	WorkflowName string
	// StageName, TaskName and TaskType name the task of a task event.
	// TaskName is required for them; StageName and TaskType, when set,
	// must be the task's.
	StageName string
	TaskName  string
	TaskType  string
	// Reason says why a task failed (TaskFailed); it is kept in the
	// instance's journal.
	Reason string
	// Extra are the event's other fields. StartWorkflow adds them to the
	// instance's input; TaskCompleted makes them the step's output.
	Extra map[string]json.RawMessage
}

// eventFields are the fields of an event that are not Extra.
var eventFields = []string{"event_name", "business_ref_no", "component_name", "workflow_name", "stage_name", "task_name", "task_type", "reason"}

// EventError is an event that cannot be read: Field is the field that is
// wrong ("" for the whole event). It matches [ordo.ErrInvalid].
type EventError struct {
	Field   string
	Message string
}

func (e *EventError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Is makes an EventError match ordo.ErrInvalid.
func (e *EventError) Is(target error) bool { return target == ordotype.ErrInvalid }

// ParseEvent reads an SWM event (a JSON object). Errors: an [*EventError]
// saying which field is wrong.
func ParseEvent(data []byte) (*Event, error) {
	if len(data) > MaxEventSize {
		return nil, &EventError{Message: fmt.Sprintf("event is %d bytes, more than the limit of %d", len(data), MaxEventSize)}
	}
	var m map[string]json.RawMessage
	if err := decode(data, &m); err != nil || m == nil {
		msg := "an event must be a JSON object"
		if err != nil {
			msg += ": " + err.Error()
		}
		return nil, &EventError{Message: msg}
	}
	ev := &Event{}
	for _, f := range []struct {
		name string
		to   *string
	}{
		{"event_name", &ev.Name}, {"business_ref_no", &ev.BusinessRefNo}, {"component_name", &ev.ComponentName},
		{"workflow_name", &ev.WorkflowName}, {"stage_name", &ev.StageName}, {"task_name", &ev.TaskName},
		{"task_type", &ev.TaskType}, {"reason", &ev.Reason},
	} {
		raw, ok := m[f.name]
		if !ok || string(raw) == "null" {
			continue
		}
		if err := decode(raw, f.to); err != nil {
			return nil, &EventError{Field: f.name, Message: "must be a string"}
		}
		*f.to = strings.TrimSpace(*f.to)
	}
	for k, v := range m {
		if !slices.Contains(eventFields, k) {
			if ev.Extra == nil {
				ev.Extra = map[string]json.RawMessage{}
			}
			ev.Extra[k] = v
		}
	}
	events := []string{EventStartWorkflow, EventTaskCompleted, EventTaskFailed, EventTaskPending}
	switch {
	case ev.Name == "":
		return nil, &EventError{Field: "event_name", Message: "required: one of " + strings.Join(events, ", ")}
	case !slices.Contains(events, ev.Name):
		return nil, &EventError{Field: "event_name", Message: fmt.Sprintf("unknown event %q: use one of %s", ev.Name, strings.Join(events, ", "))}
	case ev.BusinessRefNo == "":
		return nil, &EventError{Field: "business_ref_no", Message: "required: it identifies the workflow instance"}
	case ev.Name == EventStartWorkflow && ev.ComponentName == "" && ev.WorkflowName == "":
		return nil, &EventError{Field: "component_name", Message: "StartWorkflow needs component_name or workflow_name to know which workflow to start"}
	case ev.Name != EventStartWorkflow && ev.TaskName == "":
		return nil, &EventError{Field: "task_name", Message: ev.Name + " needs the task_name of the task"}
	}
	if ev.TaskType != "" {
		ev.TaskType = strings.ToUpper(ev.TaskType)
		if ev.TaskType != TaskService && ev.TaskType != TaskHuman {
			return nil, &EventError{Field: "task_type", Message: fmt.Sprintf("must be SERVICE or HUMAN, not %q", ev.TaskType)}
		}
	}
	return ev, nil
}

// Errors of [Events.Handle], besides an [*EventError] and the engine's.
var (
	// ErrNoWorkflow: no deployed workflow matches the event's
	// workflow_name or component_name. It matches ordo.ErrNotFound.
	ErrNoWorkflow = fmt.Errorf("no such workflow: %w", ordotype.ErrNotFound)
	// ErrNoInstance: no instance has the event's business_ref_no. It
	// matches ordo.ErrNotFound.
	ErrNoInstance = fmt.Errorf("no such instance: %w", ordotype.ErrNotFound)
	// ErrTaskState: the task is not in a state the event applies to, such
	// as TaskCompleted for a task that has not started yet.
	ErrTaskState = errors.New("the task's state does not allow the event")
	// ErrNoTasks: the engine was given no [Tasks], so task events cannot
	// complete or fail tasks.
	ErrNoTasks = errors.New("this server cannot complete or fail tasks (no remote task API)")
)

// Tasks completes and fails the open tasks of instances: the engine's
// remote task API, as [EngineTasks] gives it.
type Tasks interface {
	// OpenTasks returns the open tasks of an instance: tasks of worker
	// queues, taken by a worker or not, and waiting human tasks.
	OpenTasks(ctx context.Context, instanceID string) ([]OpenTask, error)
	// Complete completes a task with its output and the instance's new
	// state (nil leaves it unchanged).
	Complete(ctx context.Context, t OpenTask, output, state json.RawMessage) error
	// Fail fails a task for good, without retries: the instance is parked
	// for review.
	Fail(ctx context.Context, t OpenTask, message string) error
}

// OpenTask is an open task of an instance.
type OpenTask struct {
	ID int64
	// Claim is the claim of the worker that took the task, 0 when no
	// worker has taken it. Human tasks have none.
	Claim int
	Step  string
	Queue string
	Human bool
}

// Outcomes of an event, in [Result.Outcome].
const (
	// OutcomeStarted: StartWorkflow started an instance.
	OutcomeStarted = "started"
	// OutcomeExisting: StartWorkflow found an instance with the
	// business_ref_no, which it leaves alone.
	OutcomeExisting = "existing"
	// OutcomeCompleted: TaskCompleted completed the task.
	OutcomeCompleted = "completed"
	// OutcomeFailed: TaskFailed failed the task; the instance is parked
	// for review.
	OutcomeFailed = "failed"
	// OutcomeRescheduled: TaskPending offered the failed task (and any
	// other failed task of the instance) again.
	OutcomeRescheduled = "rescheduled"
	// OutcomeUnchanged: the task already is as the event says (a repeated
	// event): nothing was done.
	OutcomeUnchanged = "unchanged"
)

// Result says what an event did.
type Result struct {
	Event      string      `json:"event"`
	Outcome    string      `json:"outcome"`
	InstanceID string      `json:"instanceId"`
	Workflow   string      `json:"workflow"`
	Version    int         `json:"version"`
	Step       string      `json:"step,omitempty"`
	Status     ordo.Status `json:"status"`
}

// Events applies SWM events to an engine's instances.
type Events struct {
	// Engine runs the instances. Required.
	Engine *ordo.Engine
	// Tasks completes and fails tasks. When nil, task events other than a
	// repeated one fail with ErrNoTasks.
	Tasks Tasks
}

// Handle applies an event and says what it did.
//
// StartWorkflow starts the latest version of the workflow named by the
// event's workflow_name or component_name, with the event's fields as
// input and business_ref_no as idempotency and business key: a repeated
// StartWorkflow returns the instance it started (OutcomeExisting).
// TaskCompleted completes the instance's open task of the step named
// task_name; TaskFailed fails it for good, which parks the instance for
// review (the retrier's turn); TaskPending after a TaskFailed resubmits
// the instance, which offers the failed task again as a new attempt. An
// event that finds its task already as it says (a repeat) changes nothing.
//
// Errors: an [*EventError] (ordo.ErrInvalid) for an event that does not fit
// the workflow; ErrNoWorkflow; ErrNoInstance; ErrTaskState; ErrNoTasks; the
// engine's errors.
func (h *Events) Handle(ctx context.Context, ev *Event) (*Result, error) {
	if ev.Name == EventStartWorkflow {
		return h.start(ctx, ev)
	}
	inst, info, err := h.instance(ctx, ev)
	if err != nil {
		return nil, err
	}
	step := inst.Step(ev.TaskName)
	ti, ok := info.tasks[ev.TaskName]
	if step == nil || !ok {
		return nil, &EventError{Field: "task_name", Message: fmt.Sprintf("workflow %s has no task %q (its tasks: %s)", inst.Workflow, ev.TaskName, strings.Join(slices.Sorted(maps.Keys(info.tasks)), ", "))}
	}
	if ev.StageName != "" && ev.StageName != ti.Stage {
		return nil, &EventError{Field: "stage_name", Message: fmt.Sprintf("task %q is in stage %q, not %q", ev.TaskName, ti.Stage, ev.StageName)}
	}
	if ev.TaskType != "" && ti.Type != "" && ev.TaskType != ti.Type {
		return nil, &EventError{Field: "task_type", Message: fmt.Sprintf("task %q is a %s task, not %s", ev.TaskName, ti.Type, ev.TaskType)}
	}
	res := &Result{Event: ev.Name, InstanceID: inst.ID, Workflow: inst.Workflow, Version: inst.Version, Step: step.ID, Status: inst.Status}
	switch ev.Name {
	case EventTaskCompleted, EventTaskFailed:
		err = h.taskDone(ctx, ev, inst, step, ti, res)
	case EventTaskPending:
		err = h.pending(ctx, inst, step, res)
	}
	if err != nil {
		return nil, err
	}
	if res.Outcome != OutcomeUnchanged {
		if now, err := h.Engine.Get(ctx, inst.ID); err == nil {
			res.Status = now.Status
		}
	}
	return res, nil
}

// start handles StartWorkflow.
func (h *Events) start(ctx context.Context, ev *Event) (*Result, error) {
	name, err := h.workflowOf(ctx, ev)
	if err != nil {
		return nil, err
	}
	input := make(map[string]any, len(ev.Extra)+2)
	for k, v := range ev.Extra {
		input[k] = v
	}
	input[BusinessRefNo] = ev.BusinessRefNo
	if ev.ComponentName != "" {
		input["component_name"] = ev.ComponentName
	}
	outcome := OutcomeStarted
	if _, err := h.Engine.Store().GetInstanceByKey(ctx, name, ev.BusinessRefNo); err == nil {
		outcome = OutcomeExisting
	} else if !errors.Is(err, ordotype.ErrNotFound) {
		return nil, err
	}
	id, err := h.Engine.Start(ctx, name, input, ordo.IdempotencyKey(ev.BusinessRefNo), ordo.BusinessKey(ev.BusinessRefNo))
	if err != nil {
		return nil, err
	}
	inst, err := h.Engine.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	return &Result{Event: ev.Name, Outcome: outcome, InstanceID: id, Workflow: inst.Workflow, Version: inst.Version, Status: inst.Status}, nil
}

// workflowOf returns the name of the workflow a StartWorkflow is for.
func (h *Events) workflowOf(ctx context.Context, ev *Event) (string, error) {
	if ev.WorkflowName != "" {
		name := WorkflowName(ev.WorkflowName)
		if _, err := h.Engine.DefinitionVersion(ctx, name, 0); err != nil {
			if errors.Is(err, ordotype.ErrNotFound) {
				return "", fmt.Errorf("workflow_name %q: no workflow %q is deployed: %w", ev.WorkflowName, name, ErrNoWorkflow)
			}
			return "", err
		}
		return name, nil
	}
	defs, err := h.Engine.Definitions(ctx)
	if err != nil {
		return "", err
	}
	var names []string
	for _, d := range defs {
		if templateInfo(d.Definition).component == ev.ComponentName {
			names = append(names, d.Name)
		}
	}
	switch len(names) {
	case 0:
		return "", fmt.Errorf("component_name %q: no workflow converted from a template of this component is deployed: %w", ev.ComponentName, ErrNoWorkflow)
	case 1:
		return names[0], nil
	}
	return "", &EventError{Field: "component_name", Message: fmt.Sprintf("component %q has several workflows (%s): name one with workflow_name", ev.ComponentName, strings.Join(names, ", "))}
}

// instance finds the instance a task event is for: the one with the
// business_ref_no as business key, of the named workflow or of a workflow
// of the component.
func (h *Events) instance(ctx context.Context, ev *Event) (*ordo.Instance, *swmInfo, error) {
	p := &ordo.ListParams{BusinessKey: ev.BusinessRefNo, Limit: 100}
	if ev.WorkflowName != "" {
		p.Workflow = WorkflowName(ev.WorkflowName)
	}
	list, err := h.Engine.List(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	type match struct {
		inst *ordo.Instance
		info *swmInfo
	}
	var found []match
	for _, inst := range list {
		d, err := h.Engine.DefinitionVersion(ctx, inst.Workflow, inst.Version)
		if err != nil {
			return nil, nil, err
		}
		info := templateInfo(d.Definition)
		if ev.WorkflowName == "" && ev.ComponentName != "" && info.component != ev.ComponentName {
			continue
		}
		found = append(found, match{inst, info})
	}
	if len(found) > 1 {
		// Prefer the instances that have not ended.
		var open []match
		for _, m := range found {
			if !m.inst.Status.Terminal() {
				open = append(open, m)
			}
		}
		if len(open) > 0 {
			found = open
		}
	}
	switch len(found) {
	case 0:
		what := "any workflow"
		switch {
		case ev.WorkflowName != "":
			what = "workflow " + WorkflowName(ev.WorkflowName)
		case ev.ComponentName != "":
			what = "the workflows of component " + ev.ComponentName
		}
		return nil, nil, fmt.Errorf("business_ref_no %q: no instance of %s has it: %w", ev.BusinessRefNo, what, ErrNoInstance)
	case 1:
		return found[0].inst, found[0].info, nil
	}
	var ids []string
	for _, m := range found {
		ids = append(ids, m.inst.Workflow+" "+m.inst.ID)
	}
	return nil, nil, &EventError{Field: "business_ref_no", Message: fmt.Sprintf("%q names several instances (%s): name the workflow with workflow_name", ev.BusinessRefNo, strings.Join(ids, ", "))}
}

// taskDone handles TaskCompleted and TaskFailed.
func (h *Events) taskDone(ctx context.Context, ev *Event, inst *ordo.Instance, step *ordo.StepInfo, ti taskInfo, res *Result) error {
	completed := ev.Name == EventTaskCompleted
	switch {
	case completed && step.Status == ordo.StepCompleted, !completed && step.Status == ordo.StepFailed:
		res.Outcome = OutcomeUnchanged
		return nil
	case !step.Status.Active():
		return fmt.Errorf("%s for task %q of %s: the task is %s, not under way: %w", ev.Name, step.ID, inst.ID, step.Status, ErrTaskState)
	case h.Tasks == nil:
		return ErrNoTasks
	}
	task, err := h.openTask(ctx, inst, step)
	if err != nil {
		return err
	}
	if !task.Human && task.Claim == 0 {
		return fmt.Errorf("%s for task %q of %s: no worker has taken the task from queue %s yet (POST /api/v1/tasks/poll): %w", ev.Name, step.ID, inst.ID, task.Queue, ErrTaskState)
	}
	if completed {
		var output json.RawMessage
		if len(ev.Extra) > 0 {
			if output, err = json.Marshal(ev.Extra); err != nil {
				return &EventError{Message: fmt.Sprintf("the event's fields cannot be the output: %v", err)}
			}
		}
		var state json.RawMessage
		if ti.BusinessStatus != "" {
			if state, err = withBusinessStatus(inst.State, ti.BusinessStatus); err != nil {
				return err
			}
		}
		err = h.Tasks.Complete(ctx, task, output, state)
		res.Outcome = OutcomeCompleted
	} else {
		msg := ev.Reason
		if msg == "" {
			msg = "the task reported TaskFailed"
		}
		err = h.Tasks.Fail(ctx, task, msg)
		res.Outcome = OutcomeFailed
	}
	if err != nil {
		return fmt.Errorf("%s for task %q of %s: %w", ev.Name, step.ID, inst.ID, err)
	}
	return nil
}

// openTask returns the open task of step.
func (h *Events) openTask(ctx context.Context, inst *ordo.Instance, step *ordo.StepInfo) (OpenTask, error) {
	tasks, err := h.Tasks.OpenTasks(ctx, inst.ID)
	if err != nil {
		return OpenTask{}, err
	}
	for _, t := range tasks {
		if t.Step == step.ID {
			return t, nil
		}
	}
	return OpenTask{}, fmt.Errorf("task %q of %s is %s but has no open task (it may be waiting for a retry): %w", step.ID, inst.ID, step.Status, ErrTaskState)
}

// pending handles TaskPending: a failed task is offered again.
func (h *Events) pending(ctx context.Context, inst *ordo.Instance, step *ordo.StepInfo, res *Result) error {
	switch {
	case step.Status.Active():
		res.Outcome = OutcomeUnchanged
		return nil
	case step.Status != ordo.StepFailed:
		return fmt.Errorf("TaskPending for task %q of %s: the task is %s; only a failed task is scheduled again: %w", step.ID, inst.ID, step.Status, ErrTaskState)
	case inst.Status != ordo.StatusReview && inst.Status != ordo.StatusFailed:
		return fmt.Errorf("TaskPending for task %q of %s: the instance is %s; it is resubmitted once it is parked for review: %w", step.ID, inst.ID, inst.Status, ErrTaskState)
	}
	// Resubmitting without a step offers every failed task again, so
	// that no failed task is left behind a running instance.
	if err := h.Engine.Resubmit(ctx, inst.ID, &ordo.ResubmitOptions{Reason: "TaskPending for task " + step.ID}); err != nil {
		return fmt.Errorf("TaskPending for task %q of %s: %w", step.ID, inst.ID, err)
	}
	res.Outcome = OutcomeRescheduled
	return nil
}

// withBusinessStatus returns state with business_status set.
func withBusinessStatus(state json.RawMessage, status string) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(state) > 0 && string(state) != "null" {
		if err := json.Unmarshal(state, &m); err != nil {
			m = map[string]json.RawMessage{"previous": state} // not an object: keep it
		}
	}
	b, err := json.Marshal(status)
	if err != nil {
		return nil, err
	}
	m["business_status"] = b
	return json.Marshal(m)
}

// swmInfo is what a converted definition says of its template.
type swmInfo struct {
	component string
	tasks     map[string]taskInfo
}

type taskInfo struct {
	Stage          string
	Type           string
	BusinessStatus string
}

// templateInfo reads the template's component and tasks from the params
// of a definition's steps. A definition that is not a conversion has
// its steps with empty infos.
func templateInfo(d *ordo.Definition) *swmInfo {
	type step struct {
		ID     string `json:"id"`
		Params struct {
			Component      string `json:"component_name"`
			Stage          string `json:"stage_name"`
			Type           string `json:"task_type"`
			BusinessStatus string `json:"business_status"`
		} `json:"params"`
	}
	var src struct {
		Steps  []step `json:"steps"`
		Stages []struct {
			Name  string `json:"name"`
			Steps []step `json:"steps"`
		} `json:"stages"`
	}
	info := &swmInfo{tasks: map[string]taskInfo{}}
	if json.Unmarshal(d.JSON(), &src) != nil {
		return info
	}
	add := func(s step, stage string) {
		info.tasks[s.ID] = taskInfo{Stage: stage, Type: s.Params.Type, BusinessStatus: s.Params.BusinessStatus}
		if s.Params.Component != "" && info.component == "" {
			info.component = s.Params.Component
		}
	}
	for _, s := range src.Steps {
		add(s, "")
	}
	for _, st := range src.Stages {
		for _, s := range st.Steps {
			add(s, st.Name)
		}
	}
	return info
}
