package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/ordoflow/ordo"
)

// Order is the workflow input.
type Order struct {
	OrderID  string  `json:"orderId"`
	Customer string  `json:"customer"`
	Amount   float64 `json:"amount"`
	VIP      bool    `json:"vip"`
}

// Handlers returns the Go step handlers of the order-fulfilment workflow.
// Each returns its output for the steps after it and a side effect (a log
// line, performed by Ordo after the step is committed, with an idempotency
// key of its own).
func Handlers() ordo.Handlers {
	return ordo.Handlers{
		"payment": func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			var o Order
			if err := req.Bind(&o); err != nil {
				return ordo.Result{}, err
			}
			if o.Amount <= 0 {
				return ordo.Result{}, ordo.NonRetryable(fmt.Errorf("order %s: amount %.2f is not positive", o.OrderID, o.Amount))
			}
			return ordo.Result{
				Output:      map[string]any{"paymentId": "pay-" + o.OrderID, "amount": o.Amount},
				State:       map[string]any{"paid": o.Amount},
				SideEffects: []ordo.SideEffect{ordo.LogEffect("payment captured", map[string]any{"order": o.OrderID})},
			}, nil
		},
		"reserveInventory": func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			return ordo.Result{
				Output:      map[string]any{"reservation": "res-" + req.InstanceID[len(req.InstanceID)-8:]},
				SideEffects: []ordo.SideEffect{ordo.LogEffect("stock reserved", nil)},
			}, nil
		},
		"createLabel": func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			// The shipping service times out on the first two calls.
			if req.Attempt < 3 {
				return ordo.Result{}, errors.New("shipping service: timeout")
			}
			return ordo.Result{
				Output:      map[string]any{"label": "LBL-" + req.InstanceID[len(req.InstanceID)-8:]},
				SideEffects: []ordo.SideEffect{ordo.LogEffect("label created", nil)},
			}, nil
		},
		"vipGift": func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			return ordo.Result{
				Output:      map[string]any{"gift": "chocolates"},
				SideEffects: []ordo.SideEffect{ordo.LogEffect("gift added", nil)},
			}, nil
		},
		"ship": func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			// A join: the input holds the outputs of every step before it.
			var in map[string]map[string]any
			if err := req.Bind(&in); err != nil {
				return ordo.Result{}, err
			}
			out := map[string]any{"tracking": "TRK-" + req.InstanceID[len(req.InstanceID)-8:], "label": in["create-label"]["label"]}
			if _, ok := in["vip-gift"]["gift"]; ok {
				out["gift"] = true
			}
			return ordo.Result{Output: out, SideEffects: []ordo.SideEffect{ordo.LogEffect("shipped", out)}}, nil
		},
		"notify": func(ctx context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			var o Order
			if err := req.BindWorkflowInput(&o); err != nil {
				return ordo.Result{}, err
			}
			var shipped map[string]any
			if err := req.Bind(&shipped); err != nil {
				return ordo.Result{}, err
			}
			return ordo.Result{
				Output:      map[string]any{"orderId": o.OrderID, "tracking": shipped["tracking"], "notified": o.Customer},
				SideEffects: []ordo.SideEffect{ordo.LogEffect("customer notified", map[string]any{"customer": o.Customer})},
			}, nil
		},
	}
}
