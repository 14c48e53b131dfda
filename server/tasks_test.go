package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
)

const (
	// remoteYAML's step is done by a remote worker of queue payment.
	remoteYAML = `workflow: remote
retry: {maxAttempts: 2, initialInterval: 10ms, jitter: 0}
steps:
  - id: charge
    task: {queue: payment, command: charge}
`
	humanYAML = `workflow: approval
steps:
  - id: approve
    human:
      role: manager
      form:
        type: object
        required: [approved]
        properties:
          approved: {type: boolean}
`
)

func TestServer_Tasks(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	b.deploy(t, "", remoteYAML)
	b.deploy(t, "", humanYAML)

	t.Run("PollHeartbeatComplete", func(t *testing.T) {
		id := b.start(t, "", "remote", `{"input":{"amount":7}}`)
		tasks, err := b.client.PollTasks(ctx, &ordoclient.PollRequest{Queues: []string{"payment"}, Worker: "w1", WaitSeconds: 5})
		require.NoError(t, err)
		require.Len(t, tasks, 1)
		task := tasks[0]
		require.Equal(t, id, task.InstanceID)
		require.Equal(t, "charge", task.Command)
		require.Equal(t, 1, task.Claim)
		require.Equal(t, ordoclient.TaskKindTask, task.Kind)
		require.Equal(t, id+"/charge/1", task.IdempotencyKey)
		require.JSONEq(t, `{"amount":7}`, string(task.Input))
		require.NotNil(t, task.LeaseUntil)

		// The routes answer as the OpenAPI document says.
		res := b.do(t, request{method: "GET", path: "/api/v1/tasks?instance=" + id})
		require.Equal(t, http.StatusOK, res.status)
		res = b.do(t, request{method: "GET", path: "/api/v1/tasks/" + task.ID})
		require.Equal(t, http.StatusOK, res.status)
		res = b.do(t, request{method: "POST", path: "/api/v1/tasks/" + task.ID + "/heartbeat", body: `{"claim":1}`})
		require.Equal(t, http.StatusOK, res.status, string(res.body))

		res = b.do(t, request{method: "POST", path: "/api/v1/tasks/" + task.ID + "/complete", body: `{"claim":1,"output":{"charged":true},"state":{"paid":7},"effects":[{"type":"log","payload":{"message":"charged"}}]}`})
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		var tr ordoclient.TaskResult
		res.decode(t, &tr)
		require.Equal(t, ordoclient.TaskResult{ID: task.ID, InstanceID: id}, tr)

		inst := b.waitStatus(t, id, ordo.StatusCompleted)
		require.JSONEq(t, `{"charged":true}`, string(inst.Output))
		require.JSONEq(t, `{"paid":7}`, string(inst.State))

		// Late and repeated: 409 lease_lost.
		err = b.client.CompleteTask(ctx, task.ID, &ordoclient.CompleteRequest{Claim: 1})
		require.True(t, ordoclient.IsCode(err, ordoclient.CodeLeaseLost), "%v", err)
		_, err = b.client.HeartbeatTask(ctx, task.ID, 1)
		require.True(t, ordoclient.IsCode(err, ordoclient.CodeLeaseLost), "%v", err)
		_, err = b.client.GetTask(ctx, task.ID)
		require.True(t, ordoclient.IsCode(err, ordoclient.CodeTaskNotFound), "%v", err)
	})

	t.Run("FailIsRetried", func(t *testing.T) {
		id := b.start(t, "", "remote", `{}`)
		tasks, err := b.client.PollTasks(ctx, &ordoclient.PollRequest{Queues: []string{"payment"}, Worker: "w1", WaitSeconds: 5})
		require.NoError(t, err)
		require.Len(t, tasks, 1)
		require.NoError(t, b.client.FailTask(ctx, tasks[0].ID, &ordoclient.FailRequest{Claim: tasks[0].Claim, Error: &ordoclient.TaskError{Message: "gateway down", Code: "unavailable", Retryable: true}}))
		tasks, err = b.client.PollTasks(ctx, &ordoclient.PollRequest{Queues: []string{"payment"}, Worker: "w1", WaitSeconds: 5})
		require.NoError(t, err)
		require.Len(t, tasks, 1)
		require.Equal(t, 2, tasks[0].Attempt)
		require.NoError(t, b.client.FailTask(ctx, tasks[0].ID, &ordoclient.FailRequest{Claim: tasks[0].Claim, Error: &ordoclient.TaskError{Message: "card declined", Code: "card_declined"}}))
		inst := b.waitStatus(t, id, ordo.StatusFailed)
		require.Equal(t, "card_declined", inst.Error.Code)
	})

	t.Run("HumanTaskForm", func(t *testing.T) {
		id := b.start(t, "", "approval", `{}`)
		tasks, err := b.client.ListTasks(ctx, &ordoclient.ListTasksParams{Kind: ordoclient.TaskKindHuman, Instance: id})
		require.NoError(t, err)
		require.Len(t, tasks, 1)
		task := tasks[0]
		require.Equal(t, "manager", task.Role)
		require.JSONEq(t, `{"type":"object","required":["approved"],"properties":{"approved":{"type":"boolean"}}}`, string(task.Form))
		require.Nil(t, task.LeaseUntil)

		before := b.storeState(t)
		res := b.do(t, request{method: "POST", path: "/api/v1/tasks/" + task.ID + "/complete", body: `{"output":{"approved":"yes"}}`})
		require.Equal(t, http.StatusBadRequest, res.status, string(res.body))
		e := res.errorBody(t)
		require.Equal(t, ordoclient.CodeInvalidOutput, e.Code)
		var d map[string]any
		require.NoError(t, json.Unmarshal(e.Details, &d))
		require.Equal(t, "/approved", d["pointer"])
		require.Equal(t, before, b.storeState(t), "a refused output stores nothing")

		require.NoError(t, b.client.CompleteTask(ctx, task.ID, &ordoclient.CompleteRequest{Output: json.RawMessage(`{"approved":true}`)}))
		inst := b.waitStatus(t, id, ordo.StatusCompleted)
		require.JSONEq(t, `{"approved":true}`, string(inst.Output))
	})
}

func TestServer_TasksBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, &Options{Tokens: map[string]Role{"adm": RoleAdmin, "op": RoleOperator, "rd": RoleReader}})
	ctx := context.Background()
	b.deploy(t, "adm", remoteYAML)
	id := b.start(t, "adm", "remote", `{}`)
	tasks, err := b.client.PollTasks(ctx, &ordoclient.PollRequest{Queues: []string{"payment"}, Worker: "w1"})
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	task := tasks[0]
	base := "/api/v1/tasks/" + task.ID
	claim := strconv.Itoa(task.Claim)

	for _, tc := range []struct {
		name       string
		req        request
		wantStatus int
		wantCode   ordoclient.Code
		wantDetail string // a field of the details, when set
	}{
		{"PollMalformed", request{method: "POST", path: "/api/v1/tasks/poll", body: `{"queues":["payment"]`}, 400, ordoclient.CodeMalformedJSON, ""},
		{"PollWrongType", request{method: "POST", path: "/api/v1/tasks/poll", body: `{"queues":"payment","worker":"w"}`}, 400, ordoclient.CodeWrongType, "queues"},
		{"PollWaitWrongType", request{method: "POST", path: "/api/v1/tasks/poll", body: `{"queues":["payment"],"worker":"w","waitSeconds":"30"}`}, 400, ordoclient.CodeWrongType, "waitSeconds"},
		{"PollUnknownField", request{method: "POST", path: "/api/v1/tasks/poll", body: `{"queues":["payment"],"worker":"w","queue":"x"}`}, 400, ordoclient.CodeUnknownField, "queue"},
		{"PollNoQueue", request{method: "POST", path: "/api/v1/tasks/poll", body: `{"worker":"w"}`}, 400, ordoclient.CodeInvalidParameter, "queues"},
		{"PollNoWorker", request{method: "POST", path: "/api/v1/tasks/poll", body: `{"queues":["payment"]}`}, 400, ordoclient.CodeInvalidParameter, "worker"},
		{"PollBuiltinQueue", request{method: "POST", path: "/api/v1/tasks/poll", body: `{"queues":["ordo.human"],"worker":"w"}`}, 400, ordoclient.CodeInvalidParameter, "queues"},
		{"PollNegativeWait", request{method: "POST", path: "/api/v1/tasks/poll", body: `{"queues":["payment"],"worker":"w","waitSeconds":-1}`}, 400, ordoclient.CodeInvalidParameter, "waitSeconds"},
		{"PollReader", request{method: "POST", path: "/api/v1/tasks/poll", token: "rd", body: `{"queues":["payment"],"worker":"w"}`}, 403, ordoclient.CodeForbidden, ""},
		{"PollNoToken", request{method: "POST", path: "/api/v1/tasks/poll", token: "-", body: `{"queues":["payment"],"worker":"w"}`}, 401, ordoclient.CodeUnauthenticated, ""},
		{"CompleteReader", request{method: "POST", path: base + "/complete", token: "rd", body: `{"claim":` + claim + `}`}, 403, ordoclient.CodeForbidden, ""},
		{"CompleteBadID", request{method: "POST", path: "/api/v1/tasks/abc/complete", body: `{"claim":1}`}, 400, ordoclient.CodeInvalidParameter, "id"},
		{"CompleteUnknownID", request{method: "POST", path: "/api/v1/tasks/987654/complete", body: `{"claim":1}`}, 404, ordoclient.CodeTaskNotFound, ""},
		{"CompleteMalformed", request{method: "POST", path: base + "/complete", body: `{"claim":1,"output":}`}, 400, ordoclient.CodeMalformedJSON, ""},
		{"CompleteClaimWrongType", request{method: "POST", path: base + "/complete", body: `{"claim":"1"}`}, 400, ordoclient.CodeWrongType, "claim"},
		{"CompleteEffectsWrongType", request{method: "POST", path: base + "/complete", body: `{"claim":1,"effects":{"type":"http"}}`}, 400, ordoclient.CodeWrongType, "effects"},
		{"CompleteNoClaim", request{method: "POST", path: base + "/complete", body: `{"output":{}}`}, 400, ordoclient.CodeInvalidParameter, ""},
		{"CompleteWrongClaim", request{method: "POST", path: base + "/complete", body: `{"claim":9,"output":{}}`}, 409, ordoclient.CodeLeaseLost, ""},
		{"CompleteUnknownEffect", request{method: "POST", path: base + "/complete", body: `{"claim":1,"effects":[{"type":"carrier-pigeon"}]}`}, 400, ordoclient.CodeInvalidParameter, ""},
		{"CompleteEffectNoType", request{method: "POST", path: base + "/complete", body: `{"claim":1,"effects":[{"payload":{}}]}`}, 400, ordoclient.CodeInvalidParameter, "effects"},
		{"FailNoError", request{method: "POST", path: base + "/fail", body: `{"claim":1}`}, 400, ordoclient.CodeInvalidParameter, "error"},
		{"FailErrorWrongType", request{method: "POST", path: base + "/fail", body: `{"claim":1,"error":"boom"}`}, 400, ordoclient.CodeWrongType, "error"},
		{"FailWrongClaim", request{method: "POST", path: base + "/fail", body: `{"claim":5,"error":{"message":"x"}}`}, 409, ordoclient.CodeLeaseLost, ""},
		{"FailUnknownID", request{method: "POST", path: "/api/v1/tasks/987654/fail", body: `{"claim":1,"error":{"message":"x"}}`}, 404, ordoclient.CodeTaskNotFound, ""},
		{"HeartbeatWrongClaim", request{method: "POST", path: base + "/heartbeat", body: `{"claim":3}`}, 409, ordoclient.CodeLeaseLost, ""},
		{"HeartbeatNegativeClaim", request{method: "POST", path: base + "/heartbeat", body: `{"claim":-1}`}, 400, ordoclient.CodeInvalidParameter, "claim"},
		{"HeartbeatUnknownID", request{method: "POST", path: "/api/v1/tasks/987654/heartbeat", body: `{"claim":1}`}, 404, ordoclient.CodeTaskNotFound, ""},
		{"ListBadKind", request{method: "GET", path: "/api/v1/tasks?kind=robot"}, 400, ordoclient.CodeInvalidParameter, "kind"},
		{"ListBadLimit", request{method: "GET", path: "/api/v1/tasks?limit=0"}, 400, ordoclient.CodeInvalidParameter, "limit"},
		{"ListBadAfter", request{method: "GET", path: "/api/v1/tasks?after=x"}, 400, ordoclient.CodeInvalidParameter, "after"},
		{"ListUnknownParam", request{method: "GET", path: "/api/v1/tasks?status=open"}, 400, ordoclient.CodeInvalidParameter, "status"},
		{"GetUnknown", request{method: "GET", path: "/api/v1/tasks/987654"}, 404, ordoclient.CodeTaskNotFound, ""},
		{"GetZero", request{method: "GET", path: "/api/v1/tasks/0"}, 400, ordoclient.CodeInvalidParameter, "id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.storeState(t)
			req := tc.req
			switch req.token {
			case "":
				req.token = "adm"
			case "-":
				req.token = ""
			}
			if req.contentType == "" && req.body != "" {
				req.contentType = "application/json"
			}
			res := b.do(t, req)
			require.Equal(t, tc.wantStatus, res.status, string(res.body))
			e := res.errorBody(t)
			require.Equal(t, tc.wantCode, e.Code, e.Message)
			require.NotEmpty(t, e.Message)
			if tc.wantDetail != "" {
				require.Contains(t, string(e.Details), `"`+tc.wantDetail+`"`, e.Message)
			}
			require.Equal(t, before, b.storeState(t), "a refused request stores nothing")
		})
	}

	// The task is still open with its claim, and the right completion goes
	// through.
	got, err := b.client.GetTask(ctx, task.ID)
	require.NoError(t, err)
	require.Equal(t, task.Claim, got.Claim)
	require.NoError(t, b.client.CompleteTask(ctx, task.ID, &ordoclient.CompleteRequest{Claim: task.Claim, Output: json.RawMessage(`{}`)}))
	b.waitStatus(t, id, ordo.StatusCompleted)
	b.requireHealthy(t)
}

// TestServer_StopEndsWaitingPolls checks that a stopping server answers its
// waiting polls at once, with no task, instead of holding its stop for up to
// a minute.
func TestServer_StopEndsWaitingPolls(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	type result struct {
		tasks []ordoclient.Task
		err   error
	}
	done := make(chan result, 1)
	go func() {
		tasks, err := b.client.PollTasks(ctx, &ordoclient.PollRequest{Queues: []string{"payment"}, Worker: "w1", WaitSeconds: 25})
		done <- result{tasks, err}
	}()
	require.Eventually(t, func() bool { return b.eng.Stats().RemoteClaims >= 1 }, 10*time.Second, time.Millisecond, "the poll is waiting")
	stopCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	require.NoError(t, b.srv.Stop(stopCtx), "the stop did not wait for the poll's 25 seconds")
	r := <-done
	require.NoError(t, r.err)
	require.Empty(t, r.tasks)
}
