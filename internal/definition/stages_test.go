package definition

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse_Stages(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		src   string
		after map[string][]string
		stage map[string]string
	}{
		{
			name: "DeliverPizza",
			src: `
workflow: deliver-pizza
stages:
  - name: START
  - name: ORDER
    steps:
      - {id: confirm, task: {queue: q}}
  - name: PREPARE
    steps:
      - {id: make, task: {queue: q}}
      - {id: assign, task: {queue: q}}
      - {id: deliver-confirmed, after: [make, assign], task: {queue: q}}
  - name: DELIVER
    steps:
      - {id: deliver, human: {role: driver}}
`,
			after: map[string][]string{
				"confirm":           nil,
				"make":              {"confirm"},
				"assign":            {"confirm"},
				"deliver-confirmed": {"make", "assign"},
				"deliver":           {"make", "assign", "deliver-confirmed"},
			},
			stage: map[string]string{"confirm": "ORDER", "make": "PREPARE", "deliver": "DELIVER"},
		},
		{
			name: "WithStepsAndCrossStageAfter",
			src: `
workflow: mixed
steps:
  - {id: audit, after: b1, task: {queue: q}}
stages:
  - name: A
    steps:
      - {id: a1, task: {queue: q}}
      - {id: a2, task: {queue: q}}
  - name: B
    steps:
      - {id: b1, after: a1, task: {queue: q}}
      - {id: b2, after: b1, task: {queue: q}}
`,
			after: map[string][]string{
				"audit": {"b1"},
				"a1":    nil,
				"a2":    nil,
				// An after outside its own stage adds to the stage's implied
				// dependencies, without repeating one.
				"b1": {"a1", "a2"},
				"b2": {"b1"},
			},
			stage: map[string]string{"audit": "", "a1": "A", "b2": "B"},
		},
		{
			name: "ErrorHandlersKeepOffTheNormalPath",
			src: `
workflow: stage-errors
stages:
  - name: PAY
    steps:
      - {id: charge, task: {queue: q}, onError: ask-card}
      - {id: ask-card, task: {queue: q}}
      - {id: wait-card, after: ask-card, receive: {message: CardUpdated}}
  - name: SHIP
    steps:
      - {id: ship, task: {queue: q}, onError: refund}
      - {id: refund, task: {queue: q}}
`,
			after: map[string][]string{
				"charge":    nil,
				"ask-card":  nil,
				"wait-card": {"ask-card"},
				// SHIP waits for charge only: ask-card and wait-card run
				// only when charge fails.
				"ship": {"charge"},
				// An error handler gets no implied dependencies.
				"refund": nil,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, err := Parse([]byte(tt.src), "")
			require.NoError(t, err)
			require.Len(t, w.Steps, len(tt.after))
			for id, after := range tt.after {
				if after == nil {
					require.Empty(t, w.Step(id).After, id)
				} else {
					require.Equal(t, after, w.Step(id).After, id)
				}
			}
			for id, stage := range tt.stage {
				require.Equal(t, stage, w.Step(id).Stage, id)
			}
		})
	}
}

func TestParse_StagesErrorPathOnly(t *testing.T) {
	t.Parallel()

	w, err := Parse([]byte(`
workflow: stage-errors
stages:
  - name: PAY
    steps:
      - {id: charge, task: {queue: q}, onError: ask-card}
      - {id: ask-card, task: {queue: q}}
  - name: SHIP
    steps:
      - {id: ship, task: {queue: q}}
`), "")
	require.NoError(t, err)
	require.Equal(t, []string{"charge"}, ids(w.Roots))
	require.True(t, w.Step("ask-card").ErrorPathOnly)
	require.False(t, w.Step("ship").ErrorPathOnly)
	require.Equal(t, []string{"ship"}, w.Step("charge").Dependents)
}
