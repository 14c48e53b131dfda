package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordotest"
)

func setup(t *testing.T) (*ordo.Engine, *ordotest.Driver, *ordotest.FakeClock, *Services) {
	t.Helper()
	eng, clock, svc, err := Setup(t.Context(), t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, eng.Close(context.Background())) })
	return eng, ordotest.Drive(eng, clock), clock, svc
}

func journal(t *testing.T, eng *ordo.Engine, id string) []string {
	t.Helper()
	evs, err := eng.Journal(t.Context(), id)
	require.NoError(t, err)
	var out []string
	for _, e := range evs {
		s := e.Type
		if e.Step != "" {
			s += ":" + e.Step
		}
		out = append(out, s)
	}
	return out
}

func TestPayment_NewCardWithinTheWeek(t *testing.T) {
	t.Parallel()
	eng, d, clock, svc := setup(t)
	ctx := t.Context()
	id, err := eng.Start(ctx, "order", Order{OrderID: "B-1", Amount: 45, Card: Declined, Item: "lamp"})
	require.NoError(t, err)
	require.NoError(t, d.RunDue(ctx))

	order, err := eng.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusWaiting, order.Status)
	pay, err := eng.Get(ctx, order.Step("retrieve-payment").Child)
	require.NoError(t, err)
	require.Equal(t, ordo.StepWaiting, pay.Step("wait-card").Status)
	require.Equal(t, 1, svc.Asked["B-1"])

	clock.Advance(6 * 24 * time.Hour) // six days later, the new card
	res, err := eng.Send(ctx, "CreditCardUpdated", "B-1", CardUpdate{Card: "5555-5555-5555-4444"}, nil)
	require.NoError(t, err)
	require.Equal(t, []string{pay.ID}, res.DeliveredTo)
	require.NoError(t, d.RunUntilIdle(ctx))

	order, err = eng.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, order.Status)
	require.True(t, svc.Shipped["B-1"])
	require.Equal(t, 45.0, svc.Charged["B-1"])
	pay, err = eng.Get(ctx, pay.ID)
	require.NoError(t, err)
	require.Equal(t, 2, pay.Step("charge").Attempt, "charged again with the new card")
	require.JSONEq(t, `{"paid":true,"card":"5555-5555-5555-4444","amount":45}`, string(pay.Output))
	j := journal(t, eng, pay.ID)
	require.Contains(t, j, "workflow.looped:wait-card")
	require.Equal(t, []string{"step.failed:charge", "step.completed:charge"}, filter(j, "charge"), "each iteration is its own attempt")
}

func TestPayment_NoNewCardInAWeek(t *testing.T) {
	t.Parallel()
	eng, d, _, svc := setup(t)
	ctx := t.Context()
	id, err := eng.Start(ctx, "order", Order{OrderID: "B-2", Amount: 12, Card: Declined, Item: "pen"})
	require.NoError(t, err)
	require.NoError(t, d.RunUntilIdle(ctx)) // the week passes

	order, err := eng.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, order.Status)
	require.Equal(t, ordo.StepSkipped, order.Step("fetch-goods").Status)
	require.Equal(t, ordo.StepCompleted, order.Step("cancel-order").Status)
	require.True(t, svc.Failed["B-2"], "PaymentFailed")
	pay, err := eng.Get(ctx, order.Step("retrieve-payment").Child)
	require.NoError(t, err)
	require.Equal(t, "timeout", pay.Step("wait-card").Error.Code)
	require.Equal(t, id, pay.ParentID)
}

func TestPayment_GoodsNotAvailableRefunds(t *testing.T) {
	t.Parallel()
	eng, d, _, svc := setup(t)
	ctx := t.Context()
	id, err := eng.Start(ctx, "order", Order{OrderID: "B-3", Amount: 99, Card: "4242-4242-4242-4242", Item: OutOfStock})
	require.NoError(t, err)
	require.NoError(t, d.RunUntilIdle(ctx))

	order, err := eng.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompensated, order.Status)
	require.Equal(t, "goods_unavailable", order.Error.Code)
	require.Equal(t, ordo.StepCompensated, order.Step("retrieve-payment").Status)
	require.Equal(t, 99.0, svc.Refunded["B-3"])
	require.False(t, svc.Shipped["B-3"])
	require.Equal(t, 1, count(journal(t, eng, id), "step.completed:retrieve-payment.compensate"), "refunded once")
}

func TestRun(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), &out))
	s := out.String()
	require.Contains(t, s, "order A-2 completed")
	require.Contains(t, s, "order A-4 compensated charged 99.00 refunded 99.00")
}

func filter(list []string, step string) []string {
	var out []string
	for _, s := range list {
		if s == "step.failed:"+step || s == "step.completed:"+step {
			out = append(out, s)
		}
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}
