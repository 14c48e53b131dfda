package server

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordoswm"
)

// pizzaEvent is an SWM event of the pizza example for ORDER-001.
func pizzaEvent(event, stage, task, taskType, extra string) string {
	return `{"business_ref_no": "ORDER-001", "component_name": "ITALIAN", "event_name": "` + event +
		`", "stage_name": "` + stage + `", "task_name": "` + task + `", "task_type": "` + taskType + `"` + extra + `}`
}

// The Serverless Workflow Manager's pizza example, end to end through the
// HTTP API: the template is deployed as it is, SWM events drive it, SERVICE
// tasks are taken by workers from their queues, one fails and is retried
// by a TaskFailed → TaskPending pair, and the HUMAN task is completed.
func TestSWM_DeliverPizzaEndToEnd(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()

	template, err := os.ReadFile(filepath.Join("..", "ordoswm", "testdata", "deliver-pizza.json"))
	require.NoError(t, err)
	res := b.do(t, request{method: "POST", path: "/api/v1/definitions", contentType: "application/json", body: string(template)})
	require.Equal(t, http.StatusCreated, res.status, string(res.body))

	event := func(body string, status int, outcome string) ordoswm.Result {
		t.Helper()
		res := b.swmEvent(t, body)
		require.Equal(t, status, res.status, "%s: %s", body, res.body)
		var out ordoswm.Result
		res.decode(t, &out)
		require.Equal(t, outcome, out.Outcome, body)
		return out
	}
	// poll takes the one task of a queue, as an SWM service would.
	poll := func(queue string) ordoclient.Task {
		t.Helper()
		res := b.do(t, request{method: "POST", path: "/api/v1/tasks/poll", contentType: "application/json",
			body: `{"queues": ["` + queue + `"], "worker": "` + queue + `-service", "waitSeconds": 10}`})
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		var list ordoclient.TaskList
		res.decode(t, &list)
		require.Len(t, list.Tasks, 1, "queue %s", queue)
		return list.Tasks[0]
	}
	businessStatus := func(id string) string {
		t.Helper()
		inst, err := b.client.Get(ctx, id)
		require.NoError(t, err)
		var st struct {
			BusinessStatus string `json:"business_status"`
		}
		if len(inst.State) > 0 && string(inst.State) != "null" {
			require.NoError(t, json.Unmarshal(inst.State, &st))
		}
		return st.BusinessStatus
	}

	started := event(`{"business_ref_no": "ORDER-001", "component_name": "ITALIAN", "event_name": "StartWorkflow"}`, http.StatusCreated, ordoswm.OutcomeStarted)
	id := started.InstanceID
	require.Equal(t, "deliver-pizza", started.Workflow)

	// ORDER: the confirm_order service takes its task, with what SWM packs
	// in its StartTask message.
	confirm := poll("confirm_order_queue")
	require.Equal(t, id, confirm.InstanceID)
	require.Equal(t, "confirm_order", confirm.Step)
	require.Equal(t, "confirm_order", confirm.Command)
	require.JSONEq(t, `{"business_status": "ORDER CONFIRMED", "component_name": "ITALIAN", "stage_name": "ORDER",
		"task_name": "confirm_order", "task_queue": "confirm_order_queue", "task_type": "SERVICE"}`, string(confirm.Params))
	require.JSONEq(t, `{"business_ref_no": "ORDER-001", "component_name": "ITALIAN"}`, string(confirm.WorkflowInput))
	event(pizzaEvent("TaskCompleted", "ORDER", "confirm_order", "SERVICE", ""), http.StatusOK, ordoswm.OutcomeCompleted)
	require.Equal(t, "ORDER CONFIRMED", businessStatus(id))
	// A repeated TaskCompleted changes nothing.
	event(pizzaEvent("TaskCompleted", "ORDER", "confirm_order", "SERVICE", ""), http.StatusOK, ordoswm.OutcomeUnchanged)

	// PREPARE: make_food and assign_executive run in parallel.
	makeFood := poll("make_food_queue")
	assign := poll("assign_executive_queue")
	require.Equal(t, 1, makeFood.Attempt)
	require.Equal(t, "assign_executive", assign.Step)

	// The oven breaks: TaskFailed parks the instance for the retrier.
	failed := event(pizzaEvent("TaskFailed", "PREPARE", "make_food", "SERVICE", `, "reason": "oven broken"`), http.StatusOK, ordoswm.OutcomeFailed)
	require.Equal(t, ordo.StatusReview, failed.Status)
	inst, err := b.client.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusReview, inst.Status)
	require.Equal(t, "oven broken", inst.Error.Message)
	event(pizzaEvent("TaskFailed", "PREPARE", "make_food", "SERVICE", ""), http.StatusOK, ordoswm.OutcomeUnchanged)

	// The other branch still completes while the instance is parked.
	event(pizzaEvent("TaskCompleted", "PREPARE", "assign_executive", "SERVICE", `, "executive": "Bob"`), http.StatusOK, ordoswm.OutcomeCompleted)
	// confirm_delivery waits for make_food: it is not under way.
	res = b.swmEvent(t, pizzaEvent("TaskCompleted", "PREPARE", "confirm_delivery", "SERVICE", ""))
	require.Equal(t, http.StatusConflict, res.status, string(res.body))

	// The retrier's TaskPending offers make_food again, as a new attempt.
	rescheduled := event(pizzaEvent("TaskPending", "PREPARE", "make_food", "SERVICE", ""), http.StatusOK, ordoswm.OutcomeRescheduled)
	require.Contains(t, []ordo.Status{ordo.StatusRunning, ordo.StatusWaiting}, rescheduled.Status)
	event(pizzaEvent("TaskPending", "PREPARE", "make_food", "SERVICE", ""), http.StatusOK, ordoswm.OutcomeUnchanged)
	makeFood2 := poll("make_food_queue")
	require.Equal(t, 2, makeFood2.Attempt)
	require.NotEqual(t, makeFood.IdempotencyKey, makeFood2.IdempotencyKey)
	event(pizzaEvent("TaskCompleted", "PREPARE", "make_food", "SERVICE", ""), http.StatusOK, ordoswm.OutcomeCompleted)

	// confirm_delivery: a TaskCompleted before its service took the task
	// is refused, and changes nothing.
	require.Eventually(t, func() bool {
		inst, err := b.client.Get(ctx, id)
		require.NoError(t, err)
		return inst.Steps[3].ID == "confirm_delivery" && inst.Steps[3].Status == ordo.StepScheduled
	}, 10*time.Second, 5*time.Millisecond)
	res = b.swmEvent(t, pizzaEvent("TaskCompleted", "PREPARE", "confirm_delivery", "SERVICE", ""))
	require.Equal(t, http.StatusConflict, res.status, string(res.body))
	require.Contains(t, res.errorBody(t).Message, "no worker has taken the task from queue confirm_delivery_queue yet")
	poll("confirm_delivery_queue")
	event(pizzaEvent("TaskCompleted", "PREPARE", "confirm_delivery", "SERVICE", ""), http.StatusOK, ordoswm.OutcomeCompleted)
	require.Equal(t, "FOOD ON THE WAY", businessStatus(id))

	// DELIVER: deliver_food is a human task for the delivery executive; it
	// waits in the task list, and a TaskCompleted completes it.
	var human ordoclient.Task
	require.Eventually(t, func() bool {
		res := b.do(t, request{method: "GET", path: "/api/v1/tasks?kind=human&instance=" + id})
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		var list ordoclient.TaskList
		res.decode(t, &list)
		if len(list.Tasks) == 0 {
			return false
		}
		human = list.Tasks[0]
		return true
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, "deliver_food", human.Step)
	require.Equal(t, "delivery_executive", human.Role)
	require.JSONEq(t, `{"assigned_to": "delivery_executive", "business_status": "FOOD DELIVERED", "component_name": "ITALIAN",
		"stage_name": "DELIVER", "task_name": "deliver_food", "task_queue": "deliver_food_queue", "task_type": "HUMAN"}`, string(human.Params))
	done := event(pizzaEvent("TaskCompleted", "DELIVER", "deliver_food", "HUMAN", `, "signed_by": "Ada"`), http.StatusOK, ordoswm.OutcomeCompleted)
	require.Equal(t, ordo.StatusCompleted, done.Status)
	event(pizzaEvent("TaskCompleted", "DELIVER", "deliver_food", "HUMAN", ""), http.StatusOK, ordoswm.OutcomeUnchanged)

	inst = b.waitStatus(t, id, ordo.StatusCompleted)
	require.Equal(t, "FOOD DELIVERED", businessStatus(id))
	for _, s := range inst.Steps {
		require.Equal(t, ordo.StepCompleted, s.Status, s.ID)
	}
	require.JSONEq(t, `{"signed_by": "Ada"}`, string(inst.Steps[4].Output))
	require.JSONEq(t, `{"executive": "Bob"}`, string(inst.Steps[2].Output))

	// The journal has the failure and the resubmission.
	journal, err := b.eng.Journal(ctx, id)
	require.NoError(t, err)
	var failures, resubmits int
	for _, ev := range journal {
		switch ev.Type {
		case "step.failed":
			failures++
			require.Equal(t, "make_food", ev.Step)
		case "workflow.resubmitted":
			resubmits++
		}
	}
	require.Equal(t, 1, failures)
	require.Equal(t, 1, resubmits)

	// A second StartWorkflow for the delivered order starts nothing.
	again := event(`{"business_ref_no": "ORDER-001", "component_name": "ITALIAN", "event_name": "StartWorkflow"}`, http.StatusOK, ordoswm.OutcomeExisting)
	require.Equal(t, id, again.InstanceID)
}
