package ordo_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
)

func TestWorkflowBuilder_Params(t *testing.T) {
	t.Parallel()

	built, err := ordo.NewWorkflow("pizza").
		Step(ordo.QueueTask("confirm", "orders").Params([]byte(`{"stage_name": "ORDER", "n": 2}`))).
		Step(ordo.Human("deliver", "driver").After("confirm").Params([]byte(`{"assigned_to": "driver"}`))).
		Build()
	require.NoError(t, err)
	parsed, err := ordo.ParseDefinition([]byte(`
workflow: pizza
steps:
  - {id: confirm, task: {queue: orders}, params: {n: 2, stage_name: ORDER}}
  - {id: deliver, after: confirm, human: {role: driver}, params: {assigned_to: driver}}
`), "")
	require.NoError(t, err)
	require.Equal(t, parsed.Hash(), built.Hash(), "the builder and the template give the same definition")

	_, err = ordo.NewWorkflow("x").Step(ordo.Timer("t", 1).Params([]byte(`{"a": 1}`))).Build()
	require.ErrorContains(t, err, `step "t": params: only task and human steps take params, this is a timer step`)
	_, err = ordo.NewWorkflow("x").Step(ordo.QueueTask("q", "q").Params([]byte(`[1]`))).Build()
	require.ErrorContains(t, err, `step "q": params: must be an object`)
}
