package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ordoflow/ordo"
)

// Order is the input of an order (and of its payment).
type Order struct {
	OrderID string  `json:"orderId"`
	Amount  float64 `json:"amount"`
	Card    string  `json:"card"`
	Item    string  `json:"item"`
}

// CardUpdate is the payload of a CreditCardUpdated message.
type CardUpdate struct {
	Card string `json:"card"`
}

// Declined is the card number the fake payment provider declines.
const Declined = "4000-0000-0000-0002"

// OutOfStock is the item the fake warehouse never has.
const OutOfStock = "unicorn"

// Services records what the handlers did, as the services behind them would.
type Services struct {
	mu       sync.Mutex
	Charged  map[string]float64 // order → amount charged
	Refunded map[string]float64
	Asked    map[string]int // order → times the customer was asked for a card
	Shipped  map[string]bool
	Failed   map[string]bool // PaymentFailed published
}

// NewServices returns services with nothing done yet.
func NewServices() *Services {
	return &Services{
		Charged: map[string]float64{}, Refunded: map[string]float64{}, Asked: map[string]int{},
		Shipped: map[string]bool{}, Failed: map[string]bool{},
	}
}

// Handlers returns the Go handlers of both workflows.
func (s *Services) Handlers() ordo.Handlers {
	return ordo.Handlers{
		"charge-card": func(_ context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			var order Order
			if err := req.BindWorkflowInput(&order); err != nil {
				return ordo.Result{}, err
			}
			// The first charge gets the order; a charge after the loop gets
			// the CreditCardUpdated message.
			var upd CardUpdate
			if err := req.Bind(&upd); err != nil {
				return ordo.Result{}, err
			}
			card := order.Card
			if upd.Card != "" {
				card = upd.Card
			}
			if card == Declined {
				return ordo.Result{}, ordo.NonRetryable(ordo.WithCode("card_declined", fmt.Errorf("card %s was declined", card)))
			}
			s.mu.Lock()
			s.Charged[order.OrderID] += order.Amount
			s.mu.Unlock()
			return ordo.Result{Output: map[string]any{"paid": true, "card": card, "amount": order.Amount}}, nil
		},
		"payment-received": func(_ context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			return ordo.Result{
				Output:      req.Input, // {paid, card, amount}: the payment's output
				SideEffects: []ordo.SideEffect{ordo.LogEffect("PaymentReceived", map[string]any{"instance": req.InstanceID})},
			}, nil
		},
		"ask-customer": func(_ context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			var order Order
			_ = req.BindWorkflowInput(&order)
			s.mu.Lock()
			s.Asked[order.OrderID]++
			s.mu.Unlock()
			return ordo.Result{SideEffects: []ordo.SideEffect{ordo.LogEffect("please update your card", map[string]any{"order": order.OrderID})}}, nil
		},
		"payment-failed": func(_ context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			var order Order
			_ = req.BindWorkflowInput(&order)
			s.mu.Lock()
			s.Failed[order.OrderID] = true
			s.mu.Unlock()
			return ordo.Result{
				Output:      map[string]any{"paid": false},
				SideEffects: []ordo.SideEffect{ordo.LogEffect("PaymentFailed", map[string]any{"order": order.OrderID})},
			}, nil
		},
		"refund-payment": func(_ context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			var order Order
			_ = req.BindWorkflowInput(&order)
			s.mu.Lock()
			s.Refunded[order.OrderID] += s.Charged[order.OrderID]
			s.mu.Unlock()
			return ordo.Result{Output: map[string]any{"refunded": true}}, nil
		},
		"fetch-goods": func(_ context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			var order Order
			_ = req.BindWorkflowInput(&order)
			if order.Item == OutOfStock {
				return ordo.Result{}, ordo.NonRetryable(ordo.WithCode("goods_unavailable", errors.New(order.Item+" is not in stock")))
			}
			return ordo.Result{Output: map[string]any{"fetched": order.Item}}, nil
		},
		"ship-goods": func(_ context.Context, req *ordo.StepRequest) (ordo.Result, error) {
			var order Order
			_ = req.BindWorkflowInput(&order)
			s.mu.Lock()
			s.Shipped[order.OrderID] = true
			s.mu.Unlock()
			return ordo.Result{Output: map[string]any{"shipped": true}}, nil
		},
		"cancel-order": func(context.Context, *ordo.StepRequest) (ordo.Result, error) {
			return ordo.Result{Output: map[string]any{"cancelled": true}}, nil
		},
	}
}
