package trigger

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/ordotype"
)

func TestNormalizeInput(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: "", want: "{}"},
		{in: "  \n", want: "{}"},
		{in: `{ "a" : [1, 2] }`, want: `{"a":[1,2]}`},
		{in: `"just a string"`, want: `"just a string"`},
		{in: `{"a":`, err: "not valid JSON"},
		{in: `{} {}`, err: "not valid JSON"},
		{in: `orderId=1`, err: "at byte 0"},
	} {
		got, err := NormalizeInput(json.RawMessage(tc.in))
		if tc.err != "" {
			require.ErrorIs(t, err, ordotype.ErrInvalid, tc.in)
			require.ErrorContains(t, err, tc.err, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, string(got))
	}
	_, err := NormalizeInput(json.RawMessage(`"` + strings.Repeat("x", MaxInputSize) + `"`))
	require.ErrorContains(t, err, "more than the")
}

func TestStart_Keys(t *testing.T) {
	t.Parallel()
	def, err := definition.Parse([]byte("workflow: w\nidempotencyKey: input.order.id\nbusinessKey: \"'ord-' + string(input.n)\"\nsteps:\n  - id: a\n    task: {handler: a}\n"), "w.yaml")
	require.NoError(t, err)
	ctx := context.Background()

	cmd, err := Start(ctx, def, 3, StartParams{Workflow: "w", Input: json.RawMessage(`{"order":{"id":"A-1"},"n":7}`)})
	require.NoError(t, err)
	require.Equal(t, "A-1", cmd.IdempotencyKey)
	require.Equal(t, "ord-7", cmd.BusinessKey, "whole numbers are ints in CEL")
	require.Equal(t, 3, cmd.Version)

	cmd, err = Start(ctx, def, 3, StartParams{Input: json.RawMessage(`{"order":{"id":"A-1"},"n":7}`), IdempotencyKey: "mine", BusinessKey: "B"})
	require.NoError(t, err)
	require.Equal(t, "mine", cmd.IdempotencyKey, "an explicit key wins over the expression")
	require.Equal(t, "B", cmd.BusinessKey)

	_, err = Start(ctx, def, 3, StartParams{Input: json.RawMessage(`{"n":7}`)})
	require.ErrorIs(t, err, ordotype.ErrInvalid)
	require.ErrorContains(t, err, "idempotencyKey (input.order.id)")
}
