package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordoclient"
)

const tasksDefinition = `workflow: desk
steps:
  - id: approve
    human:
      role: manager
      form:
        type: object
        required: [approved]
        properties:
          approved: {type: boolean}
  - id: charge
    after: [approve]
    retry: {maxAttempts: 1}
    task: {queue: payment}
`

func TestTaskVerbs(t *testing.T) {
	t.Parallel()
	bin := ordoBinary(t)
	dir := t.TempDir()
	defFile := filepath.Join(dir, "desk.yaml")
	require.NoError(t, os.WriteFile(defFile, []byte(tasksDefinition), 0o600))
	outFile := filepath.Join(dir, "out.json")
	require.NoError(t, os.WriteFile(outFile, []byte(`{"approved": true}`), 0o600))

	srv := startServer(t, bin, []string{"ORDO_TOKENS=adm=admin,op=operator,rd=reader,mgr=operator+manager"},
		"server", "--db", filepath.Join(dir, "ordo.db"), "--addr", "127.0.0.1:0")
	admin := []string{"--server", srv.url, "--token", "adm"}
	op := []string{"ORDO_SERVER=" + srv.url, "ORDO_TOKEN=op"}
	read := []string{"ORDO_SERVER=" + srv.url, "ORDO_TOKEN=rd"}
	manager := []string{"ORDO_SERVER=" + srv.url, "ORDO_TOKEN=mgr"}

	_, errOut, code := ordo(t, bin, nil, append([]string{"deploy", defFile}, admin...)...)
	require.Equal(t, 0, code, errOut)
	out, errOut, code := ordo(t, bin, op, "start", "desk", "-o", "json")
	require.Equal(t, 0, code, errOut)
	var started struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(out), &started), out)

	// The human task is listed: a table by default, an array of tasks with -o json.
	out, errOut, code = ordo(t, bin, read, "tasks", "--kind", "human")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "role manager")
	require.Contains(t, out, started.ID)
	out, errOut, code = ordo(t, bin, read, "tasks", "--instance", started.ID, "-o", "json")
	require.Equal(t, 0, code, errOut)
	var tasks []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &tasks), out)
	require.Len(t, tasks, 1)
	human := tasks[0]["id"].(string)
	require.NotEmpty(t, human)
	require.Equal(t, "human", tasks[0]["kind"])
	require.Equal(t, "manager", tasks[0]["role"])

	// An output the form refuses: exit 1, and the message says where.
	_, errOut, code = ordo(t, bin, manager, "complete", human, "--output", `{"approved":"yes"}`)
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "/approved")
	// The reader may not complete, nor may tokens without the task's role
	// (admin too); bad usage is 2; an unknown task 3.
	_, errOut, code = ordo(t, bin, read, "complete", human, "--output", `{"approved":true}`)
	require.Equal(t, 4, code, errOut)
	for _, env := range [][]string{op, {"ORDO_SERVER=" + srv.url, "ORDO_TOKEN=adm"}} {
		_, errOut, code = ordo(t, bin, env, "complete", human, "--output", `{"approved":true}`)
		require.Equal(t, 4, code, errOut)
		require.Contains(t, errOut, "role manager")
		_, errOut, code = ordo(t, bin, env, "fail", human, "--error", "no")
		require.Equal(t, 4, code, errOut)
	}
	for _, args := range [][]string{
		{"complete", "abc", "--output", "{}"},
		{"complete", human},
		{"complete", human, "--output", "{nope"},
		{"fail", human},
		{"tasks", "--kind", "robot"},
		{"tasks", "extra"},
	} {
		_, errOut, code = ordo(t, bin, op, args...)
		require.Equal(t, 2, code, "%v: %s", args, errOut)
	}
	_, errOut, code = ordo(t, bin, op, "complete", "987654", "--output", "{}")
	require.Equal(t, 3, code, errOut)

	out, errOut, code = ordo(t, bin, manager, "complete", human, "--output", "@"+outFile)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "task "+human+" completed")

	// The remote task: a worker takes it; a wrong claim is a lost lease.
	c, err := ordoclient.New(srv.url, &ordoclient.Options{Token: "op"})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	polled, err := c.PollTasks(ctx, &ordoclient.PollRequest{Queues: []string{"payment"}, Worker: "w1", WaitSeconds: 10})
	require.NoError(t, err)
	require.Len(t, polled, 1)
	task := polled[0]
	require.JSONEq(t, `{"approved":true}`, string(task.Input))

	out, errOut, code = ordo(t, bin, read, "tasks", "--queue", "payment")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "w1")
	_, errOut, code = ordo(t, bin, op, "complete", task.ID, "--output", "{}", "--claim", "7")
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "lease lost")
	_, errOut, code = ordo(t, bin, op, "complete", task.ID, "--output", "{}")
	require.Equal(t, 1, code, "a remote task needs its claim: %s", errOut)

	out, errOut, code = ordo(t, bin, op, "fail", task.ID, "--error", "card declined", "--code", "card_declined", "--claim", "1")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "task "+task.ID+" failed")
	_, errOut, code = ordo(t, bin, op, "fail", task.ID, "--error", "again", "--claim", "1")
	require.Equal(t, 1, code, errOut)
	require.True(t, strings.Contains(errOut, "lease lost"), errOut)
	// Naming the instance, the refused failure of the task that is done is
	// journaled on it.
	_, errOut, code = ordo(t, bin, op, "fail", task.ID, "--error", "again", "--claim", "1", "--instance", started.ID)
	require.Equal(t, 1, code, errOut)
	events, err := c.Journal(ctx, started.ID)
	require.NoError(t, err)
	var rejected []string
	for _, ev := range events {
		if ev.Type == "step.rejected" {
			rejected = append(rejected, string(ev.Data))
		}
	}
	require.Len(t, rejected, 1, "only the request that named the instance is journaled")
	require.Contains(t, rejected[0], "failure with claim 1 refused: the task is done")

	require.Eventually(t, func() bool {
		inst, err := c.Get(ctx, started.ID)
		require.NoError(t, err)
		return inst.Status == "failed" && inst.Error != nil && inst.Error.Code == "card_declined"
	}, 10*time.Second, 20*time.Millisecond)
	out, errOut, code = ordo(t, bin, read, "tasks", "-o", "json")
	require.Equal(t, 0, code, errOut)
	require.JSONEq(t, `[]`, out)
	require.Equal(t, 0, srv.stop(t))
}
