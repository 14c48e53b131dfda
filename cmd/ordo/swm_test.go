package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A Serverless Workflow Manager template deploys with ordo deploy, told by
// its shape or by --format.
func TestDeploySWMTemplate(t *testing.T) {
	t.Parallel()
	bin := ordoBinary(t)
	dir := t.TempDir()
	template := `{"workflow_name": "Pick Up Pizza", "component_name": "TAKEAWAY", "stages": [
		{"stage_name": "ORDER", "stage_order": 1, "tasks": [
			{"task_name": "confirm_order", "parent_task": [], "task_queue": "confirm_order_queue", "task_type": "SERVICE"}]}]}`
	file := filepath.Join(dir, "pickup.json")
	require.NoError(t, os.WriteFile(file, []byte(template), 0o600))
	other := filepath.Join(dir, "pickup.template") // not .json: sent as YAML
	require.NoError(t, os.WriteFile(other, []byte(template), 0o600))

	srv := startServer(t, bin, nil, "server", "--db", filepath.Join(dir, "ordo.db"), "--addr", "127.0.0.1:0")
	at := []string{"--server", srv.url}

	out, errOut, code := ordo(t, bin, nil, append([]string{"deploy", file}, at...)...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "deployed pick-up-pizza version 1")
	out, errOut, code = ordo(t, bin, nil, append([]string{"deploy", "--format", "swm", other}, at...)...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "pick-up-pizza is unchanged: identical to version 1")

	_, errOut, code = ordo(t, bin, nil, append([]string{"deploy", "--format", "ordo", file}, at...)...)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "the server refused the definition")
	require.Contains(t, errOut, "workflow_name: unknown field")
	_, errOut, code = ordo(t, bin, nil, append([]string{"deploy", "--format", "bpmn", file}, at...)...)
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "--format must be ordo or swm")
}
