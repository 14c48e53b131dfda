package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ordoflow/ordo/worker"
)

// Order is the workflow input.
type Order struct {
	OrderID  string  `json:"orderId"`
	Customer string  `json:"customer"`
	Amount   float64 `json:"amount"`
}

// The queues of workflow.yaml.
var allQueues = []string{"payment", "inventory", "shipping", "notifications"}

type handlers struct {
	name      string
	delay     time.Duration
	pauseFile string
	verbose   bool
}

// all returns the handler of each queue. Every output carries the worker's
// name, so the journal tells which worker did each step.
func (h *handlers) all() map[string]worker.HandlerFunc {
	return map[string]worker.HandlerFunc{
		"payment":       h.payment,
		"inventory":     h.inventory,
		"shipping":      h.shipping,
		"notifications": h.notifications,
	}
}

func (h *handlers) payment(ctx context.Context, t *worker.Task) (*worker.Result, error) {
	var o Order
	if err := t.BindWorkflowInput(&o); err != nil {
		return nil, err
	}
	if o.Amount <= 0 {
		// No retry will make this amount right: fail the step at once, with
		// a code an error path could match.
		return nil, worker.NonRetryable(worker.WithCode("invalid_amount", fmt.Errorf("order %s: amount %.2f is not positive", o.OrderID, o.Amount)))
	}
	// A real charge would send t.IdempotencyKey to the payment provider,
	// so that a task delivered twice charges once.
	return &worker.Result{
		Output:  map[string]any{"paymentId": "pay-" + o.OrderID, "amount": o.Amount, "worker": h.name},
		State:   map[string]any{"paid": o.Amount},
		Effects: []worker.Effect{worker.LogEffect("payment captured", map[string]any{"order": o.OrderID})},
	}, nil
}

func (h *handlers) inventory(ctx context.Context, t *worker.Task) (*worker.Result, error) {
	return &worker.Result{Output: map[string]any{"reservation": "res-" + t.InstanceID, "worker": h.name}}, nil
}

// shipping serves two steps, told apart by their command.
func (h *handlers) shipping(ctx context.Context, t *worker.Task) (*worker.Result, error) {
	switch t.Command {
	case "label":
		return &worker.Result{Output: map[string]any{"label": "LBL-" + t.InstanceID, "worker": h.name}}, nil
	case "ship":
		// A join: the input holds the outputs of the steps before it.
		var in map[string]map[string]any
		if err := t.Bind(&in); err != nil {
			return nil, err
		}
		return &worker.Result{Output: map[string]any{
			"tracking": "TRK-" + t.InstanceID,
			"label":    in["create-label"]["label"],
			"worker":   h.name,
		}}, nil
	}
	return nil, worker.NonRetryable(fmt.Errorf("shipping: unknown command %q", t.Command))
}

func (h *handlers) notifications(ctx context.Context, t *worker.Task) (*worker.Result, error) {
	var o Order
	if err := t.BindWorkflowInput(&o); err != nil {
		return nil, err
	}
	return &worker.Result{
		Output:  map[string]any{"sent": true, "to": o.Customer, "worker": h.name},
		Effects: []worker.Effect{worker.LogEffect("customer notified", map[string]any{"order": o.OrderID})},
	}, nil
}

// trace wraps fn with the simulated delay, the pause file and the -v
// lines.
func (h *handlers) trace(fn worker.HandlerFunc) worker.HandlerFunc {
	return func(ctx context.Context, t *worker.Task) (*worker.Result, error) {
		if h.verbose {
			fmt.Printf("start task=%s instance=%s step=%s attempt=%d claim=%d\n", t.ID, t.InstanceID, t.Step, t.Attempt, t.Claim)
		}
		if h.pauseFile != "" {
			if _, err := os.Stat(h.pauseFile); err == nil {
				// Print before holding: whoever watches knows the task is held.
				fmt.Printf("paused task=%s instance=%s step=%s attempt=%d claim=%d\n", t.ID, t.InstanceID, t.Step, t.Attempt, t.Claim)
				if err := h.hold(ctx); err != nil {
					return nil, err
				}
			}
		}
		if h.delay > 0 {
			select {
			case <-time.After(h.delay):
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		}
		res, err := fn(ctx, t)
		if h.verbose {
			fmt.Printf("done task=%s instance=%s step=%s error=%v\n", t.ID, t.InstanceID, t.Step, err)
		}
		return res, err
	}
}

// hold waits while the pause file exists.
func (h *handlers) hold(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(h.pauseFile); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-tick.C:
		}
	}
}
