package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordotest"
)

func TestRun_PrintsEveryOrderCompleted(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	db := filepath.Join(t.TempDir(), "orders.db")
	require.NoError(t, run(context.Background(), &out, db, 6, false))
	s := out.String()
	require.Equal(t, 6, strings.Count(s, " completed payment: completed"), s)
	require.Contains(t, s, "starting A-1001 again returned the same instance: true")
	require.Contains(t, s, "create-label: completed after 3 attempts")
	require.Contains(t, s, "vip-gift: skipped")
	require.Contains(t, s, "vip-gift: completed")
	require.Contains(t, s, "workflow.completed")
}

// TestWorkflow runs the flow on the fake clock: the retries of create-label
// take no real time.
func TestWorkflow(t *testing.T) {
	t.Parallel()
	tt := ordotest.New(t, nil)
	ctx := t.Context()
	def, err := ordo.LoadDefinition("workflow.yaml")
	require.NoError(t, err)
	_, err = tt.Engine.Register(ctx, def, Handlers())
	require.NoError(t, err)

	vip := tt.Start("order-fulfilment", Order{OrderID: "A-1", Customer: "ann", Amount: 10, VIP: true})
	plain := tt.Start("order-fulfilment", Order{OrderID: "A-2", Customer: "bob", Amount: 10})
	bad := tt.Start("order-fulfilment", Order{OrderID: "A-3", Customer: "cy", Amount: -1})
	start := tt.Clock.Now()
	tt.RunUntilIdle()
	require.Less(t, tt.Clock.Now().Sub(start), time.Minute, "backoffs passed on the fake clock")

	inst := tt.RequireStatus(vip, ordo.StatusCompleted)
	require.Equal(t, 3, inst.Step("create-label").Attempt)
	require.Equal(t, ordo.StepCompleted, inst.Step("vip-gift").Status)
	require.JSONEq(t, `"A-1"`, `"`+inst.BusinessKey+`"`)

	inst = tt.RequireStatus(plain, ordo.StatusCompleted)
	require.Equal(t, ordo.StepSkipped, inst.Step("vip-gift").Status)
	require.Equal(t, ordo.StepCompleted, inst.Step("ship").Status, "ship runs although the gift was skipped")

	inst = tt.RequireStatus(bad, ordo.StatusReview)
	require.Equal(t, 1, inst.Step("payment").Attempt, "a non-retryable payment error is not retried")
	require.Contains(t, inst.Error.Message, "amount -1.00 is not positive")
}
