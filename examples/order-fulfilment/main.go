// Command order-fulfilment runs orders through the order-fulfilment workflow
// on an embedded SQLite file and prints what happened to each of them.
//
//	go run ./examples/order-fulfilment
//	go run ./examples/order-fulfilment -orders 20 -db orders.db
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ordoflow/ordo"
)

func main() {
	orders := flag.Int("orders", 5, "how many orders to run")
	db := flag.String("db", "", "SQLite file (default: a fresh file in a temporary directory)")
	verbose := flag.Bool("v", false, "print the side effects as they are performed")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *db, *orders, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "order-fulfilment:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer, db string, orders int, verbose bool) error {
	if db == "" {
		dir, err := os.MkdirTemp("", "ordo-example-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		db = filepath.Join(dir, "orders.db")
	}
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))

	eng, err := ordo.Open(ctx, ordo.SQLite(db), &ordo.Config{Logger: logger})
	if err != nil {
		return err
	}
	defer eng.Close(ctx)

	def, err := ordo.LoadDefinition(workflowFile())
	if err != nil {
		return err
	}
	version, err := eng.Register(ctx, def, Handlers())
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "registered %s v%d on %s\n\n", def.Name(), version, db)

	ids := make([]string, orders)
	for i := range orders {
		order := Order{OrderID: fmt.Sprintf("A-%04d", 1001+i), Customer: fmt.Sprintf("c%d", i%3), Amount: 20 + 7.5*float64(i), VIP: i%3 == 0}
		if ids[i], err = eng.Start(ctx, "order-fulfilment", order); err != nil {
			return err
		}
	}
	// Starting the first order again is a no-op: same idempotency key.
	again, err := eng.Start(ctx, "order-fulfilment", Order{OrderID: "A-1001"})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "started %d orders (starting A-1001 again returned the same instance: %v)\n\n", orders, again == ids[0])

	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, id := range ids {
		inst, err := eng.Wait(wctx, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "order %s  %-9s ", inst.BusinessKey, inst.Status)
		var steps []string
		for _, s := range inst.Steps {
			mark := string(s.Status)
			if s.Attempt > 1 {
				mark += fmt.Sprintf(" after %d attempts", s.Attempt)
			}
			steps = append(steps, s.ID+": "+mark)
		}
		fmt.Fprintf(w, "%s\n    output %s\n", strings.Join(steps, ", "), inst.Output)
	}

	events, err := eng.Journal(ctx, ids[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\njournal of order A-1001 (%d events):\n", len(events))
	for _, e := range events {
		fmt.Fprintf(w, "  %3d  %-20s %-18s attempt %d\n", e.Seq, e.Type, e.Step, e.Attempt)
	}
	return nil
}

// workflowFile finds workflow.yaml next to this program, from the
// repository root or from this directory.
func workflowFile() string {
	for _, p := range []string{"examples/order-fulfilment/workflow.yaml", "workflow.yaml"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "workflow.yaml"
}
