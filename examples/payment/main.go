// Command payment runs the payment example: an order flow that retrieves a
// payment through a child workflow, which waits up to a week for new card
// details when a card is declined and charges again; and a refund (a saga's
// compensation) when the goods turn out not to be available.
//
// It runs on the fake clock of package ordotest, so the week-long wait of
// the third order passes in a moment:
//
//	go run ./examples/payment
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordotest"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "payment:", err)
		os.Exit(1)
	}
}

// Setup opens an engine on a fresh SQLite file with the fake clock and
// registers both workflows.
func Setup(ctx context.Context, dir string) (*ordo.Engine, *ordotest.FakeClock, *Services, error) {
	clock := ordotest.NewFakeClock(time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC))
	eng, err := ordo.Open(ctx, ordo.SQLite(filepath.Join(dir, "payment.db")), &ordo.Config{Clock: clock})
	if err != nil {
		return nil, nil, nil, err
	}
	svc := NewServices()
	for _, f := range []string{"payment.yaml", "order.yaml"} {
		def, err := ordo.LoadDefinition(file(f))
		if err != nil {
			eng.Close(ctx)
			return nil, nil, nil, err
		}
		if _, err := eng.Register(ctx, def, svc.Handlers()); err != nil {
			eng.Close(ctx)
			return nil, nil, nil, err
		}
	}
	return eng, clock, svc, nil
}

func run(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "ordo-payment-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	eng, clock, svc, err := Setup(ctx, dir)
	if err != nil {
		return err
	}
	defer eng.Close(ctx)
	h := ordotest.Drive(eng, clock)

	orders := []Order{
		{OrderID: "A-1", Amount: 30, Card: "4242-4242-4242-4242", Item: "book"},
		{OrderID: "A-2", Amount: 45, Card: Declined, Item: "lamp"},
		{OrderID: "A-3", Amount: 12, Card: Declined, Item: "pen"},
		{OrderID: "A-4", Amount: 99, Card: "4242-4242-4242-4242", Item: OutOfStock},
	}
	ids := map[string]string{}
	for _, o := range orders {
		id, err := eng.Start(ctx, "order", o)
		if err != nil {
			return err
		}
		ids[o.OrderID] = id
	}
	if err := h.RunDue(ctx); err != nil {
		return err
	}
	// Two days later the customer of A-2 gives a new card; A-3's never does.
	clock.Advance(48 * time.Hour)
	if _, err := eng.Send(ctx, "CreditCardUpdated", "A-2", CardUpdate{Card: "5555-5555-5555-4444"}, nil); err != nil {
		return err
	}
	if err := h.RunUntilIdle(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "clock now %s (a week and more passed for A-3)\n\n", clock.Now().Format(time.DateTime))
	for _, o := range orders {
		inst, err := eng.Get(ctx, ids[o.OrderID])
		if err != nil {
			return err
		}
		pay := inst.Step("retrieve-payment")
		child, err := eng.Get(ctx, pay.Child)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "order %s %-11s charged %-5.2f refunded %-5.2f shipped %-5v | payment %s %s: %s\n",
			o.OrderID, inst.Status, svc.Charged[o.OrderID], svc.Refunded[o.OrderID], svc.Shipped[o.OrderID],
			child.ID[:8], child.Status, stepSummary(child))
	}
	return nil
}

func stepSummary(inst *ordo.Instance) string {
	var parts []string
	for _, s := range inst.Steps {
		if s.Status == ordo.StepPending {
			continue
		}
		part := s.ID + " " + string(s.Status)
		if s.Attempt > 1 {
			part += fmt.Sprintf(" (attempt %d)", s.Attempt)
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, ", ")
}

// file finds a definition next to this program, from the repository root
// or from this directory.
func file(name string) string {
	p := filepath.Join("examples", "payment", name)
	if _, err := os.Stat(p); err == nil {
		return p
	}
	return name
}
