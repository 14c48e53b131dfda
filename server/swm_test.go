package server

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordoswm"
)

// pickupSWM is a Serverless Workflow Manager template with SERVICE tasks
// only: the pizza example without its delivery.
const pickupSWM = `{
    "workflow_name": "Pick Up Pizza",
    "component_name": "TAKEAWAY",
    "stages": [
        {"stage_name": "START", "stage_order": 0.0},
        {"stage_name": "ORDER", "stage_order": 1.0, "tasks": [
            {"task_name": "confirm_order", "parent_task": [], "task_queue": "confirm_order_queue",
             "task_type": "SERVICE", "business_status": "ORDER CONFIRMED"}
        ]},
        {"stage_name": "PREPARE", "stage_order": 2.0, "tasks": [
            {"task_name": "make_food", "parent_task": [], "task_type": "SERVICE", "task_queue": "make_food_queue", "oven": "stone"},
            {"task_name": "box_food", "parent_task": ["make_food"], "task_type": "SERVICE", "task_queue": "box_food_queue",
             "business_status": "READY FOR PICKUP"}
        ]}
    ]
}`

// swmEvent sends an SWM event.
func (b *testBundle) swmEvent(t *testing.T, body string) *response {
	t.Helper()
	return b.do(t, request{method: "POST", path: "/api/v1/swm/events", contentType: "application/json", body: body})
}

func TestSWM_DeployTemplate(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	// Told by its shape, whatever the Content-Type says.
	for i, ct := range []string{"application/json", "application/yaml", ""} {
		res := b.do(t, request{method: "POST", path: "/api/v1/definitions", contentType: ct, body: pickupSWM})
		var out ordoclient.DeployResult
		res.decode(t, &out)
		require.Equal(t, "pick-up-pizza", out.Name)
		require.Equal(t, 1, out.Version)
		if i == 0 {
			require.Equal(t, http.StatusCreated, res.status, string(res.body))
			require.True(t, out.Created)
		} else {
			require.Equal(t, http.StatusOK, res.status, "the same template again stores nothing")
		}
	}
	res := b.do(t, request{method: "POST", path: "/api/v1/definitions?format=swm", contentType: "application/json", body: pickupSWM})
	require.Equal(t, http.StatusOK, res.status, string(res.body))

	// The deployed definition is the conversion.
	d, err := b.client.Definition(ctx, "pick-up-pizza", 0)
	require.NoError(t, err)
	want, err := ordoswm.Convert([]byte(pickupSWM))
	require.NoError(t, err)
	require.Equal(t, want.Hash(), d.Hash)
	var src struct {
		Stages []struct {
			Name  string `json:"name"`
			Steps []struct {
				ID     string            `json:"id"`
				After  []string          `json:"after"`
				Task   map[string]string `json:"task"`
				Params map[string]string `json:"params"`
			} `json:"steps"`
		} `json:"stages"`
	}
	require.NoError(t, json.Unmarshal(d.Definition, &src))
	require.Len(t, src.Stages, 3)
	box := src.Stages[2].Steps[1]
	require.Equal(t, "box_food", box.ID)
	require.Equal(t, []string{"make_food"}, box.After)
	require.Equal(t, map[string]string{"queue": "box_food_queue", "command": "box_food"}, box.Task)
	require.Equal(t, "READY FOR PICKUP", box.Params["business_status"])
	require.Equal(t, "stone", src.Stages[2].Steps[0].Params["oven"], "extra fields reach the task")

	before := b.storeState(t)

	// An explicit format wins over the shape.
	res = b.do(t, request{method: "POST", path: "/api/v1/definitions?format=ordo", contentType: "application/json", body: pickupSWM})
	require.Equal(t, http.StatusBadRequest, res.status)
	require.Equal(t, ordoclient.CodeInvalidDefinition, res.errorBody(t).Code)
	res = b.do(t, request{method: "POST", path: "/api/v1/definitions?format=swm", contentType: "application/yaml", body: quickYAML})
	require.Equal(t, http.StatusBadRequest, res.status)
	e := res.errorBody(t)
	require.Equal(t, ordoclient.CodeInvalidDefinition, e.Code)
	require.Contains(t, e.Message, "invalid Serverless Workflow Manager template: an SWM template must be a JSON object")
	res = b.do(t, request{method: "POST", path: "/api/v1/definitions?format=bpmn", contentType: "application/json", body: pickupSWM})
	require.Equal(t, http.StatusBadRequest, res.status)
	require.Equal(t, ordoclient.CodeInvalidParameter, res.errorBody(t).Code)

	// A broken template: every problem, each naming its stage and task.
	res = b.do(t, request{method: "POST", path: "/api/v1/definitions", contentType: "application/json", body: `{
		"workflow_name": "Broken", "stages": [{"stage_name": "ORDER", "stage_order": 1, "tasks": [
			{"task_name": "a", "task_type": "SERVICE"},
			{"task_name": "b", "task_queue": "q", "parent_task": ["c"]}]}]}`})
	require.Equal(t, http.StatusBadRequest, res.status)
	e = res.errorBody(t)
	require.Equal(t, ordoclient.CodeInvalidDefinition, e.Code)
	require.Contains(t, e.Message, `invalid Serverless Workflow Manager template: stage "ORDER", task "a": task_queue: required (and 1 more problems)`)
	require.Contains(t, string(e.Details), `stage \"ORDER\", task \"b\": parent_task: unknown task \"c\"`)

	require.Equal(t, before, b.storeState(t), "refused deploys store nothing")
}

func TestSWM_StartWorkflow(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	b.do(t, request{method: "POST", path: "/api/v1/definitions", contentType: "application/json", body: pickupSWM})

	res := b.swmEvent(t, `{"business_ref_no": "ORDER-001", "component_name": "TAKEAWAY", "event_name": "StartWorkflow", "customer": {"name": "Ada"}}`)
	require.Equal(t, http.StatusCreated, res.status, string(res.body))
	var started ordoswm.Result
	res.decode(t, &started)
	require.Equal(t, ordoswm.OutcomeStarted, started.Outcome)
	require.Equal(t, "pick-up-pizza", started.Workflow)
	require.Equal(t, 1, started.Version)
	require.Equal(t, "/api/v1/instances/"+started.InstanceID, res.header.Get("Location"))

	inst, err := b.client.Get(ctx, started.InstanceID)
	require.NoError(t, err)
	require.Equal(t, "ORDER-001", inst.BusinessKey)
	require.JSONEq(t, `{"business_ref_no": "ORDER-001", "component_name": "TAKEAWAY", "customer": {"name": "Ada"}}`, string(inst.Input))
	require.Equal(t, ordo.StepScheduled, inst.Steps[0].Status, "confirm_order waits on its queue for a worker")

	// A repeated StartWorkflow, by component or by workflow name, answers
	// with the same instance and starts nothing.
	for _, body := range []string{
		`{"business_ref_no": "ORDER-001", "component_name": "TAKEAWAY", "event_name": "StartWorkflow"}`,
		`{"business_ref_no": "ORDER-001", "workflow_name": "Pick Up Pizza", "event_name": "StartWorkflow"}`,
		`{"business_ref_no": "ORDER-001", "workflow_name": "pick-up-pizza", "event_name": "StartWorkflow"}`,
	} {
		res = b.swmEvent(t, body)
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		var again ordoswm.Result
		res.decode(t, &again)
		require.Equal(t, ordoswm.OutcomeExisting, again.Outcome)
		require.Equal(t, started.InstanceID, again.InstanceID)
	}
	list, err := b.eng.List(ctx, &ordo.ListParams{Workflow: "pick-up-pizza"})
	require.NoError(t, err)
	require.Len(t, list, 1)

	// Another order is another instance.
	res = b.swmEvent(t, `{"business_ref_no": "ORDER-002", "component_name": "TAKEAWAY", "event_name": "StartWorkflow"}`)
	require.Equal(t, http.StatusCreated, res.status, string(res.body))

	// TaskPending for a task under way changes nothing.
	res = b.swmEvent(t, `{"business_ref_no": "ORDER-001", "component_name": "TAKEAWAY", "event_name": "TaskPending", "stage_name": "ORDER", "task_name": "confirm_order", "task_type": "SERVICE"}`)
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	var pending ordoswm.Result
	res.decode(t, &pending)
	require.Equal(t, ordoswm.OutcomeUnchanged, pending.Outcome)
	require.Equal(t, "confirm_order", pending.Step)
}

func TestSWM_BadEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.do(t, request{method: "POST", path: "/api/v1/definitions", contentType: "application/json", body: pickupSWM})
	res := b.swmEvent(t, `{"business_ref_no": "ORDER-001", "component_name": "TAKEAWAY", "event_name": "StartWorkflow"}`)
	require.Equal(t, http.StatusCreated, res.status, string(res.body))
	before := b.storeState(t)

	task := func(event, extra string) string {
		return `{"business_ref_no": "ORDER-001", "component_name": "TAKEAWAY", "event_name": "` + event + `"` + extra + `}`
	}
	tests := map[string]struct {
		body   string
		status int
		code   ordoclient.Code
		want   string
	}{
		"NotJSON":          {`{"event_name": `, 400, ordoclient.CodeInvalidParameter, "an event must be a JSON object"},
		"NotAnObject":      {`["StartWorkflow"]`, 400, ordoclient.CodeInvalidParameter, "an event must be a JSON object"},
		"NoEventName":      {`{"business_ref_no": "X"}`, 400, ordoclient.CodeInvalidParameter, "event_name: required: one of StartWorkflow, TaskCompleted, TaskFailed, TaskPending"},
		"UnknownEvent":     {`{"event_name": "StartTask", "business_ref_no": "X"}`, 400, ordoclient.CodeInvalidParameter, `event_name: unknown event "StartTask"`},
		"NoRefNo":          {`{"event_name": "StartWorkflow", "component_name": "TAKEAWAY"}`, 400, ordoclient.CodeInvalidParameter, "business_ref_no: required"},
		"RefNoNotString":   {`{"event_name": "StartWorkflow", "business_ref_no": 7}`, 400, ordoclient.CodeInvalidParameter, "business_ref_no: must be a string"},
		"NoWorkflow":       {`{"event_name": "StartWorkflow", "business_ref_no": "X"}`, 400, ordoclient.CodeInvalidParameter, "StartWorkflow needs component_name or workflow_name"},
		"NoTaskName":       {task("TaskCompleted", ""), 400, ordoclient.CodeInvalidParameter, "task_name: TaskCompleted needs the task_name"},
		"BadTaskType":      {task("TaskCompleted", `, "task_name": "confirm_order", "task_type": "ROBOT"`), 400, ordoclient.CodeInvalidParameter, `task_type: must be SERVICE or HUMAN, not "ROBOT"`},
		"UnknownTask":      {task("TaskCompleted", `, "task_name": "eat_food"`), 400, ordoclient.CodeInvalidParameter, `workflow pick-up-pizza has no task "eat_food" (its tasks: box_food, confirm_order, make_food)`},
		"WrongStage":       {task("TaskCompleted", `, "task_name": "confirm_order", "stage_name": "PREPARE"`), 400, ordoclient.CodeInvalidParameter, `task "confirm_order" is in stage "ORDER", not "PREPARE"`},
		"WrongType":        {task("TaskCompleted", `, "task_name": "confirm_order", "task_type": "HUMAN"`), 400, ordoclient.CodeInvalidParameter, `task "confirm_order" is a SERVICE task, not HUMAN`},
		"UnknownComponent": {`{"event_name": "StartWorkflow", "business_ref_no": "X", "component_name": "SUSHI"}`, 404, ordoclient.CodeWorkflowNotFound, `component_name "SUSHI": no workflow converted from a template of this component is deployed`},
		"UnknownWorkflow":  {`{"event_name": "StartWorkflow", "business_ref_no": "X", "workflow_name": "Deliver Sushi"}`, 404, ordoclient.CodeWorkflowNotFound, `workflow_name "Deliver Sushi": no workflow "deliver-sushi" is deployed`},
		"UnknownRefNo":     {`{"event_name": "TaskCompleted", "business_ref_no": "ORDER-404", "component_name": "TAKEAWAY", "task_name": "confirm_order"}`, 404, ordoclient.CodeInstanceNotFound, `business_ref_no "ORDER-404": no instance of the workflows of component TAKEAWAY has it`},
		"OtherComponent":   {`{"event_name": "TaskCompleted", "business_ref_no": "ORDER-001", "component_name": "SUSHI", "task_name": "confirm_order"}`, 404, ordoclient.CodeInstanceNotFound, `no instance of the workflows of component SUSHI has it`},
		"NotStarted":       {task("TaskCompleted", `, "task_name": "make_food"`), 409, ordoclient.CodeInvalidState, `TaskCompleted for task "make_food" of`},
		"FailNotStarted":   {task("TaskFailed", `, "task_name": "box_food"`), 409, ordoclient.CodeInvalidState, `the task is pending, not under way`},
		"PendingNotFailed": {task("TaskPending", `, "task_name": "make_food"`), 409, ordoclient.CodeInvalidState, `TaskPending for task "make_food" of`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			res := b.swmEvent(t, tt.body)
			require.Equal(t, tt.status, res.status, string(res.body))
			e := res.errorBody(t)
			require.Equal(t, tt.code, e.Code)
			require.Contains(t, e.Message, tt.want)
		})
	}

	res = b.do(t, request{method: "POST", path: "/api/v1/swm/events", contentType: "text/plain", body: task("StartWorkflow", "")})
	require.Equal(t, http.StatusUnsupportedMediaType, res.status)
	res = b.do(t, request{method: "POST", path: "/api/v1/swm/events", contentType: "application/json", body: `{"event_name": "StartWorkflow", "business_ref_no": "` + string(make([]byte, 2<<20)) + `"}`})
	require.Equal(t, http.StatusRequestEntityTooLarge, res.status)

	require.Equal(t, before, b.storeState(t), "refused events store nothing")
	b.requireHealthy(t)
}

func TestSWM_EventsNeedTheRole(t *testing.T) {
	t.Parallel()
	b := setup(t, &Options{Tokens: map[string]Role{"adm": RoleAdmin, "op": RoleOperator, "rd": RoleReader}})
	res := b.do(t, request{method: "POST", path: "/api/v1/definitions", token: "adm", contentType: "application/json", body: pickupSWM})
	require.Equal(t, http.StatusCreated, res.status, string(res.body))
	start := `{"business_ref_no": "ORDER-001", "component_name": "TAKEAWAY", "event_name": "StartWorkflow"}`
	res = b.do(t, request{method: "POST", path: "/api/v1/swm/events", contentType: "application/json", body: start})
	require.Equal(t, http.StatusUnauthorized, res.status)
	res = b.do(t, request{method: "POST", path: "/api/v1/swm/events", token: "rd", contentType: "application/json", body: start})
	require.Equal(t, http.StatusForbidden, res.status)
	res = b.do(t, request{method: "POST", path: "/api/v1/swm/events", token: "op", contentType: "application/json", body: start})
	require.Equal(t, http.StatusCreated, res.status, string(res.body))
}
