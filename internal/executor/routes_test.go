package executor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/ordotype"
)

func TestDecide_ErrorRoutes(t *testing.T) {
	t.Parallel()

	const src = `
workflow: pay
onFailure: %s
steps:
  - id: charge
    task: {handler: charge}
    retry: {maxAttempts: 1}
    onError:
      - codes: [card_declined, card_expired]
        next: ask-new-card
      - codes: [goods_unavailable]
        compensate: true
      - codes: [fraud]
        next: [alert, block]
  - {id: ask-new-card, task: {handler: ask}}
  - {id: alert, task: {handler: alert}}
  - {id: block, task: {handler: block}}
`
	tests := []struct {
		name      string
		onFailure string
		code      string
		want      []string
		status    ordotype.Status
	}{
		{"FirstRoute", "fail", "card_expired", []string{"step.failed:charge", "step.scheduled:ask-new-card"}, ordotype.StatusRunning},
		{"SeveralSteps", "fail", "fraud", []string{"step.failed:charge", "step.scheduled:alert", "step.scheduled:block"}, ordotype.StatusRunning},
		// Nothing completed before charge: the saga has nothing to undo.
		{"CompensateOnFail", "fail", "goods_unavailable", []string{"step.failed:charge", "workflow.compensating", "workflow.compensated"}, ordotype.StatusCompensated},
		{"CompensateOnReview", "review", "goods_unavailable", []string{"step.failed:charge", "workflow.compensating", "workflow.compensated"}, ordotype.StatusCompensated},
		{"NoRouteMatches", "fail", "timeout", []string{"step.failed:charge", "workflow.failed"}, ordotype.StatusFailed},
		{"NoCode", "review", "", []string{"step.failed:charge", "workflow.parked"}, ordotype.StatusReview},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			def := mustParse(t, strings.Replace(src, "%s", tt.onFailure, 1))
			d := run(t, def, nil, Start{ID: "i1"})
			d = run(t, def, d.State, StepDone{Step: "charge", Attempt: 1, Err: &journal.Error{Message: "no", Code: tt.code}})
			require.Equal(t, tt.want, types(d))
			require.Equal(t, tt.status, d.State.Status)
		})
	}
}
