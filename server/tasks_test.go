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

	t.Run("CompleteTakesTheNextTask", func(t *testing.T) {
		b.deploy(t, "", `workflow: two
steps:
  - id: charge
    task: {queue: payment}
  - id: ship
    after: [charge]
    task: {queue: shipping}
`)
		id := b.start(t, "", "two", `{"input":{"amount":3}}`)
		tasks, err := b.client.PollTasks(ctx, &ordoclient.PollRequest{Queues: []string{"payment", "shipping"}, Worker: "w1", WaitSeconds: 5})
		require.NoError(t, err)
		require.Len(t, tasks, 1)
		charge := tasks[0]
		require.Equal(t, id, charge.InstanceID)

		// A bad next is refused before anything is stored.
		for _, bad := range []struct{ body, param string }{
			{`{"claim":1,"next":{"worker":"w1"}}`, "next.queues"},
			{`{"claim":1,"next":{"queues":["shipping"]}}`, "next.worker"},
			{`{"claim":1,"next":{"queues":["ordo.human"],"worker":"w1"}}`, "next.queues"},
			{`{"claim":1,"next":{"queues":["shipping"],"worker":"w1","max":-1}}`, "next.max"},
		} {
			res := b.do(t, request{method: "POST", path: "/api/v1/tasks/" + charge.ID + "/complete", body: bad.body, contentType: "application/json"})
			require.Equal(t, http.StatusBadRequest, res.status, string(res.body))
			require.Contains(t, string(res.body), bad.param)
		}

		res := b.do(t, request{method: "POST", path: "/api/v1/tasks/" + charge.ID + "/complete", contentType: "application/json",
			body: `{"claim":1,"output":{"charged":true},"next":{"queues":["payment","shipping"],"worker":"w1"}}`})
		require.Equal(t, http.StatusOK, res.status, string(res.body))
		var tr ordoclient.TaskResult
		res.decode(t, &tr)
		require.Equal(t, id, tr.InstanceID)
		require.Len(t, tr.Next, 1)
		ship := tr.Next[0]
		require.Equal(t, "ship", ship.Step)
		require.Equal(t, id, ship.InstanceID)
		require.Equal(t, 1, ship.Claim)
		require.Equal(t, "w1", ship.Worker)
		require.JSONEq(t, `{"charged":true}`, string(ship.Input))
		require.NotNil(t, ship.LeaseUntil)

		// Nothing is left to poll: ship is w1's; it completes as if polled.
		tasks, err = b.client.PollTasks(ctx, &ordoclient.PollRequest{Queues: []string{"shipping"}, Worker: "w2"})
		require.NoError(t, err)
		require.Empty(t, tasks)
		done, err := b.client.CompleteTaskNext(ctx, ship.ID, &ordoclient.CompleteRequest{Claim: ship.Claim, Next: &ordoclient.NextRequest{Queues: []string{"shipping"}, Worker: "w1"}})
		require.NoError(t, err)
		require.Empty(t, done.Next, "the last step makes nothing ready")
		b.waitStatus(t, id, ordo.StatusCompleted)
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

// TestServer_HumanTaskRole checks that a human task assigned to a role is
// completed or failed only with a token that carries that role, whatever
// the token's API role.
func TestServer_HumanTaskRole(t *testing.T) {
	t.Parallel()
	b := setup(t, &Options{
		Tokens:    map[string]Role{"adm": RoleAdmin, "op": RoleOperator, "mgr": RoleOperator, "clerk": RoleOperator},
		TaskRoles: map[string][]string{"mgr": {"approver", "manager"}, "clerk": {"clerk"}},
	})
	ctx := context.Background()
	b.deploy(t, "adm", humanYAML)
	id := b.start(t, "adm", "approval", `{}`)
	tasks, err := b.client.ListTasks(ctx, &ordoclient.ListTasksParams{Kind: ordoclient.TaskKindHuman, Instance: id})
	require.NoError(t, err)
	require.Len(t, tasks, 1)
	path := "/api/v1/tasks/" + tasks[0].ID

	before := b.storeState(t)
	for _, tok := range []string{"op", "adm", "clerk"} {
		for _, req := range []request{
			{method: "POST", path: path + "/complete", body: `{"output":{"approved":true}}`},
			{method: "POST", path: path + "/fail", body: `{"error":{"message":"no"}}`},
		} {
			req.token, req.contentType = tok, "application/json"
			res := b.do(t, req)
			require.Equal(t, http.StatusForbidden, res.status, "%s %s: %s", tok, req.path, res.body)
			e := res.errorBody(t)
			require.Equal(t, ordoclient.CodeForbidden, e.Code)
			require.Contains(t, e.Message, "role manager")
			var d map[string]any
			require.NoError(t, json.Unmarshal(e.Details, &d))
			require.Equal(t, "manager", d["needs"])
		}
	}
	require.Equal(t, before, b.storeState(t), "a refused result stores nothing")

	res := b.do(t, request{method: "POST", path: path + "/complete", token: "mgr", contentType: "application/json", body: `{"output":{"approved":true}}`})
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	inst := b.waitStatus(t, id, ordo.StatusCompleted)
	require.JSONEq(t, `{"approved":true}`, string(inst.Output))
}

// rejections returns the data of the step.rejected events of an instance's
// journal.
func (b *testBundle) rejections(t *testing.T, id string) []map[string]any {
	t.Helper()
	events, err := b.client.Journal(context.Background(), id)
	require.NoError(t, err)
	var out []map[string]any
	for _, ev := range events {
		if ev.Type == "step.rejected" {
			var d map[string]any
			require.NoError(t, json.Unmarshal(ev.Data, &d))
			d["step"], d["attempt"] = ev.Step, ev.Attempt
			out = append(out, d)
		}
	}
	return out
}

// TestServer_LateResultsAreJournaled checks that every late completion or
// failure the API refuses is journaled once as step.rejected on the task's
// instance, also when the task is done and gone from the store, and that
// the record changes nothing else.
func TestServer_LateResultsAreJournaled(t *testing.T) {
	t.Parallel()
	b := setupEngine(t, nil, &ordo.Config{TaskLease: 300 * time.Millisecond})
	ctx := context.Background()
	b.deploy(t, "", remoteYAML)
	b.deploy(t, "", humanYAML)
	poll := func(worker string) ordoclient.Task {
		t.Helper()
		tasks, err := b.client.PollTasks(ctx, &ordoclient.PollRequest{Queues: []string{"payment"}, Worker: worker, WaitSeconds: 5})
		require.NoError(t, err)
		require.Len(t, tasks, 1)
		return tasks[0]
	}
	lost := func(err error) {
		t.Helper()
		require.True(t, ordoclient.IsCode(err, ordoclient.CodeLeaseLost), "%v", err)
	}

	t.Run("TaskDoneAfterRedelivery", func(t *testing.T) {
		id := b.start(t, "", "remote", `{"input":{"amount":1}}`)
		first := poll("w1")
		time.Sleep(400 * time.Millisecond) // w1's lease runs out
		second := poll("w2")
		require.Equal(t, first.ID, second.ID)
		require.Equal(t, 2, second.Claim)
		require.NoError(t, b.client.CompleteTask(ctx, second.ID, &ordoclient.CompleteRequest{Claim: 2, InstanceID: id, Output: json.RawMessage(`{"by":"w2"}`)}))
		done := b.waitStatus(t, id, ordo.StatusCompleted)
		_, err := b.client.GetTask(ctx, first.ID)
		require.True(t, ordoclient.IsCode(err, ordoclient.CodeTaskNotFound), "the task is gone: %v", err)

		// w1's late completion and failure name the instance the poll gave:
		// each is refused and journaled once.
		lost(b.client.CompleteTask(ctx, first.ID, &ordoclient.CompleteRequest{Claim: 1, InstanceID: id, Output: json.RawMessage(`{"by":"w1"}`)}))
		lost(b.client.FailTask(ctx, first.ID, &ordoclient.FailRequest{Claim: 1, InstanceID: id, Error: &ordoclient.TaskError{Message: "late"}}))
		// w2's repeated completion too.
		lost(b.client.CompleteTask(ctx, second.ID, &ordoclient.CompleteRequest{Claim: 2, InstanceID: id, Output: json.RawMessage(`{}`)}))
		rej := b.rejections(t, id)
		require.Len(t, rej, 3)
		for i, want := range []struct {
			worker, reason string
			claim          float64
		}{
			{"w1", "completion with claim 1 refused: the task is done", 1},
			{"w1", "failure with claim 1 refused: the task is done", 1},
			{"w2", "completion with claim 2 refused: the task is done", 2},
		} {
			require.Equal(t, "charge", rej[i]["step"])
			require.Equal(t, 1, rej[i]["attempt"])
			require.Equal(t, want.worker, rej[i]["worker"])
			require.Equal(t, want.claim, rej[i]["claim"])
			require.Equal(t, want.reason, rej[i]["reason"])
		}

		// Nothing else changed: the instance keeps w2's result.
		inst, err := b.client.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, ordo.StatusCompleted, inst.Status)
		require.JSONEq(t, `{"by":"w2"}`, string(inst.Output))
		require.Equal(t, done.Seq+3, inst.Seq)

		// Without the instance, or with a claim the task never had, or an
		// instance the task is not of, there is nothing to journal on.
		other := b.start(t, "", "approval", `{}`)
		before := b.storeState(t)
		lost(b.client.CompleteTask(ctx, first.ID, &ordoclient.CompleteRequest{Claim: 1}))
		lost(b.client.CompleteTask(ctx, first.ID, &ordoclient.CompleteRequest{Claim: 3, InstanceID: id}))
		lost(b.client.CompleteTask(ctx, first.ID, &ordoclient.CompleteRequest{Claim: 1, InstanceID: other}))
		lost(b.client.CompleteTask(ctx, first.ID, &ordoclient.CompleteRequest{Claim: 1, InstanceID: "no-such-instance"}))
		require.Equal(t, before, b.storeState(t))
	})

	t.Run("StepMovedOn", func(t *testing.T) {
		id := b.start(t, "", "remote", `{}`)
		task := poll("w1")
		_, err := b.client.Cancel(ctx, id, &ordoclient.CancelRequest{Reason: "customer left"})
		require.NoError(t, err)
		b.waitStatus(t, id, ordo.StatusCancelled)
		lost(b.client.CompleteTask(ctx, task.ID, &ordoclient.CompleteRequest{Claim: task.Claim, InstanceID: id, Output: json.RawMessage(`{}`)}))
		rej := b.rejections(t, id)
		require.Len(t, rej, 1)
		require.Equal(t, "w1", rej[0]["worker"])
		require.Contains(t, rej[0]["reason"], "completion with claim 1 refused")
		inst, err := b.client.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, ordo.StatusCancelled, inst.Status)
	})

	t.Run("HumanTaskDone", func(t *testing.T) {
		id := b.start(t, "", "approval", `{}`)
		tasks, err := b.client.ListTasks(ctx, &ordoclient.ListTasksParams{Kind: ordoclient.TaskKindHuman, Instance: id})
		require.NoError(t, err)
		require.Len(t, tasks, 1)
		task := tasks[0]
		require.NoError(t, b.client.CompleteTask(ctx, task.ID, &ordoclient.CompleteRequest{Output: json.RawMessage(`{"approved":true}`)}))
		b.waitStatus(t, id, ordo.StatusCompleted)
		lost(b.client.CompleteTask(ctx, task.ID, &ordoclient.CompleteRequest{InstanceID: id, Output: json.RawMessage(`{"approved":false}`)}))
		rej := b.rejections(t, id)
		require.Len(t, rej, 1)
		require.Equal(t, "approve", rej[0]["step"])
		require.Equal(t, "completion refused: the task is done", rej[0]["reason"])
		inst, err := b.client.Get(ctx, id)
		require.NoError(t, err)
		require.JSONEq(t, `{"approved":true}`, string(inst.Output))
	})

	t.Run("OpenTaskOfAnotherInstance", func(t *testing.T) {
		id := b.start(t, "", "remote", `{}`)
		task := poll("w1")
		require.Equal(t, id, task.InstanceID)
		before := b.storeState(t)
		err := b.client.CompleteTask(ctx, task.ID, &ordoclient.CompleteRequest{Claim: task.Claim, InstanceID: "someone-else", Output: json.RawMessage(`{}`)})
		require.True(t, ordoclient.IsCode(err, ordoclient.CodeInvalidParameter), "%v", err)
		require.Equal(t, before, b.storeState(t))
		require.NoError(t, b.client.CompleteTask(ctx, task.ID, &ordoclient.CompleteRequest{Claim: task.Claim, InstanceID: id, Output: json.RawMessage(`{}`)}))
		b.waitStatus(t, id, ordo.StatusCompleted)
	})
}

// timedYAML's remote step times out after 600ms; a timed-out attempt is
// retried once, then the fallback step runs.
const timedYAML = `workflow: timed
steps:
  - id: charge
    task: {queue: timed}
    timeout: 600ms
    retry: {maxAttempts: 2, initialInterval: 10ms, jitter: 0}
    onTimeout: [fallback]
  - id: fallback
    timer: {duration: 1ms}
`

// TestServer_RemoteTaskTimeout checks that a step's timeout bounds a
// remote task as it bounds a local one: the poll gives the deadline, the
// lease never runs past it, and a worker that keeps heartbeating, answers
// late, or goes silent past it makes the attempt fail with code timeout,
// which the retry policy and onTimeout then handle.
func TestServer_RemoteTaskTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, nil) // the task lease is 30s: the timeout is shorter
	ctx := context.Background()
	b.deploy(t, "", timedYAML)
	poll := func() ordoclient.Task {
		t.Helper()
		tasks, err := b.client.PollTasks(ctx, &ordoclient.PollRequest{Queues: []string{"timed"}, Worker: "w1", WaitSeconds: 5})
		require.NoError(t, err)
		require.Len(t, tasks, 1)
		return tasks[0]
	}
	failures := func(id string) []map[string]any {
		t.Helper()
		events, err := b.client.Journal(ctx, id)
		require.NoError(t, err)
		var out []map[string]any
		for _, ev := range events {
			if ev.Type == "step.failed" {
				var d map[string]any
				require.NoError(t, json.Unmarshal(ev.Data, &d))
				d["attempt"] = ev.Attempt
				out = append(out, d)
			}
		}
		return out
	}
	id := b.start(t, "", "timed", `{}`)

	// Attempt 1: the worker heartbeats past the deadline.
	task := poll()
	require.NotNil(t, task.Deadline, "the poll gives the deadline")
	require.NotNil(t, task.LeaseUntil)
	require.False(t, task.LeaseUntil.After(*task.Deadline), "the lease ends by the deadline")
	require.WithinDuration(t, task.CreatedAt.Add(600*time.Millisecond), *task.Deadline, 2*time.Second)
	got, err := b.client.GetTask(ctx, task.ID)
	require.NoError(t, err)
	require.Equal(t, task.Deadline.UTC(), got.Deadline.UTC())
	for {
		until, err := b.client.HeartbeatTask(ctx, task.ID, task.Claim)
		if err != nil {
			// Refused as past the timeout, or, when the engine failed the
			// attempt at its deadline first, as done.
			require.True(t, ordoclient.IsCode(err, ordoclient.CodeLeaseLost), "%v", err)
			require.Regexp(t, "timeout|is done", err.Error())
			require.False(t, time.Now().Before(*task.Deadline), "no heartbeat is refused before the deadline")
			break
		}
		require.False(t, until.After(*task.Deadline), "a heartbeat never extends the lease past the deadline")
		time.Sleep(100 * time.Millisecond)
	}
	f := failures(id)
	require.Len(t, f, 1)
	require.Equal(t, 1, f[0]["attempt"])
	require.Equal(t, "timeout", f[0]["error"].(map[string]any)["code"])

	// Attempt 2 (the retry): the worker answers after the deadline. Its
	// result is refused and journaled; the attempt times out and the
	// step takes onTimeout.
	task = poll()
	require.Equal(t, 2, task.Attempt)
	time.Sleep(time.Until(*task.Deadline) + 50*time.Millisecond)
	err = b.client.CompleteTask(ctx, task.ID, &ordoclient.CompleteRequest{Claim: task.Claim, InstanceID: id, Output: json.RawMessage(`{"late":true}`)})
	require.True(t, ordoclient.IsCode(err, ordoclient.CodeLeaseLost), "%v", err)
	inst := b.waitStatus(t, id, ordo.StatusCompleted)
	f = failures(id)
	require.Len(t, f, 2)
	require.Equal(t, 2, f[1]["attempt"])
	require.Equal(t, "timeout", f[1]["error"].(map[string]any)["code"])
	rej := b.rejections(t, id)
	require.Len(t, rej, 1)
	require.Contains(t, rej[0]["reason"], "ran past the step's timeout of 600ms")
	var steps []string
	for _, s := range inst.Steps {
		steps = append(steps, s.ID+":"+string(s.Status))
	}
	require.Contains(t, steps, "fallback:completed", "onTimeout ran")

	// A silent worker: its lease ends at the deadline, and the next poll
	// of the queue times the attempt out rather than delivering it again.
	id = b.start(t, "", "timed", `{}`)
	task = poll()
	time.Sleep(time.Until(*task.Deadline) + 50*time.Millisecond)
	var retry *ordoclient.Task
	for retry == nil {
		tasks, err := b.client.PollTasks(ctx, &ordoclient.PollRequest{Queues: []string{"timed"}, Worker: "w2", WaitSeconds: 5})
		require.NoError(t, err)
		for _, nt := range tasks {
			require.NotEqual(t, task.ID, nt.ID, "the timed-out delivery is not handed out again")
			retry = &nt
		}
	}
	require.Equal(t, 2, retry.Attempt)
	f = failures(id)
	require.Len(t, f, 1)
	require.Equal(t, "timeout", f[0]["error"].(map[string]any)["code"])
	require.NoError(t, b.client.CompleteTask(ctx, retry.ID, &ordoclient.CompleteRequest{Claim: retry.Claim, InstanceID: id, Output: json.RawMessage(`{"ok":true}`)}))
	inst = b.waitStatus(t, id, ordo.StatusCompleted)
	require.JSONEq(t, `{"ok":true}`, string(inst.Output))
}
