package ordocli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
)

// The demo, the end-to-end test and examples/worker run the same workflow.
func TestDemoWorkflowIsTheExample(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "worker", "workflow.yaml"))
	require.NoError(t, err)
	require.Equal(t, string(example), string(demoWorkflow),
		"cmd/ordo/ordocli/devdata/order-remote.yaml must be a copy of examples/worker/workflow.yaml")
	e2e, err := os.ReadFile(filepath.Join("..", "testdata", "order-remote.yaml"))
	require.NoError(t, err)
	require.Equal(t, string(example), string(e2e),
		"cmd/ordo/testdata/order-remote.yaml must be a copy of examples/worker/workflow.yaml")
	def, err := ordo.ParseDefinition(demoWorkflow, "order-remote.yaml")
	require.NoError(t, err)
	require.Equal(t, "order-remote", def.Name())
}
