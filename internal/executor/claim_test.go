package executor

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordotype"
)

const remoteYAML = `
workflow: remote
steps:
  - id: pay
    task: {queue: payment}
`

func TestDecide_StepClaimedAndRejected(t *testing.T) {
	t.Parallel()
	def := mustParse(t, remoteYAML)
	d := run(t, def, nil, Start{ID: "i1", Input: json.RawMessage(`{}`), Version: 1})

	d = run(t, def, d.State, StepClaimed{Step: "pay", Attempt: 1, Worker: "w1", Claim: 1})
	require.Equal(t, []string{"step.started:pay"}, types(d))
	require.Equal(t, "w1", d.Events[0].Worker)
	require.Equal(t, 1, d.Events[0].Claim)
	require.Equal(t, ordotype.StepRunning, d.State.Steps["pay"].Status)
	require.Equal(t, t0, d.State.Steps["pay"].StartedAt)

	// Delivered again after the lease ran out: same attempt, next claim.
	d = run(t, def, d.State, StepClaimed{Step: "pay", Attempt: 1, Worker: "w2", Claim: 2})
	require.Equal(t, []string{"step.started:pay"}, types(d))

	before := d.State.Clone()
	d = run(t, def, d.State, StepRejected{Step: "pay", Attempt: 1, Worker: "w1", Claim: 1, Reason: "lease lost"})
	require.Equal(t, []string{"step.rejected:pay"}, types(d))
	require.Empty(t, d.Tasks)
	require.Equal(t, before.Steps, d.State.Steps, "a rejection changes no step")
	require.Equal(t, before.Status, d.State.Status)

	d = run(t, def, d.State, done("pay", 1, `{"ok":true}`))
	require.Equal(t, []string{"step.completed:pay", "workflow.completed"}, types(d))
	require.True(t, d.State.Steps["pay"].StartedAt.Equal(t0), "the start time is the claim's")

	_, err := Decide(context.Background(), def, d.State, StepClaimed{Step: "pay", Attempt: 1, Worker: "w3", Claim: 3}, t0, nil)
	require.ErrorIs(t, err, ErrStale, "a claim of an ended instance is stale")
}
