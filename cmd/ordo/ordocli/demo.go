package ordocli

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/worker"
)

// demoWorkflow is a copy of examples/worker/workflow.yaml, the order flow
// with every step on a worker queue, which `ordo dev --demo` deploys and
// runs. A test keeps the two the same.
//
//go:embed devdata/order-remote.yaml
var demoWorkflow []byte

// demoInterval is how often `ordo dev --demo` starts an order.
const demoInterval = time.Second

// demoSetup does what devSetup does, then deploys the order-remote
// workflow, starts simulated payment, inventory, shipping and notification
// workers in this process (worker SDK workers polling this server's own
// API, as remote services would) and starts an order every second, until
// ctx is done.
func demoSetup(ctx context.Context, eng *ordo.Engine, out io.Writer, base string) (string, error) {
	if _, err := devSetup(ctx, eng, out, base); err != nil {
		return "", err
	}
	def, err := ordo.ParseDefinition(demoWorkflow, "order-remote.yaml")
	if err != nil {
		return "", fmt.Errorf("the demo workflow: %w", err)
	}
	v, err := eng.Deploy(ctx, def)
	if err != nil {
		return "", fmt.Errorf("deploying the demo workflow: %w", err)
	}
	fmt.Fprintf(out, "  deployed  %s v%d (its steps are tasks on worker queues)\n", def.Name(), v)

	quiet := slog.New(slog.DiscardHandler)
	sim := &demoWorkers{}
	for _, q := range []struct {
		name  string
		queue string
		fn    worker.HandlerFunc
	}{
		{"demo-payments", "payment", sim.payment},
		{"demo-warehouse", "inventory", sim.inventory},
		{"demo-shipping", "shipping", sim.shipping},
		{"demo-notifications", "notifications", sim.notify},
	} {
		w, err := worker.New(worker.Options{Server: base, Name: q.name, Concurrency: 8, PollWait: 10 * time.Second, StopTimeout: 5 * time.Second, Logger: quiet})
		if err != nil {
			return "", err
		}
		w.Handle(q.queue, q.fn)
		go w.Run(ctx)
	}
	fmt.Fprintln(out, "  workers   demo-payments, demo-warehouse, demo-shipping, demo-notifications (simulated, in this process, on the worker API)")

	client, err := ordoclient.New(base, &ordoclient.Options{UserAgent: "ordo-demo"})
	if err != nil {
		return "", err
	}
	run := strconv.FormatInt(time.Now().Unix(), 36)
	go func() {
		tick := time.NewTicker(demoInterval)
		defer tick.Stop()
		for n := 1; ; n++ {
			order := map[string]any{
				"orderId":  fmt.Sprintf("demo-%s-%04d", run, n),
				"customer": demoCustomers[n%len(demoCustomers)],
				"amount":   float64(5+rand.IntN(200)) + 0.99,
			}
			input, _ := json.Marshal(order)
			if _, err := client.Start(ctx, def.Name(), &ordoclient.StartRequest{Input: input}); err != nil && ctx.Err() == nil {
				fmt.Fprintf(out, "demo: starting an order failed: %v\n", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	fmt.Fprintf(out, "  demo      an order-remote instance starts every %s\n", demoInterval)
	return fmt.Sprintf(`
Orders are flowing. Look at them:
  ordo list --workflow %[1]s
  ordo get ID             (the steps, and the worker that did each one)
  ordo journal ID         (the whole history, retries included)
  curl %[2]s/api/v1/instances?workflow=%[1]s
Run your own worker next to the simulated ones:
  go run ./examples/worker -server %[2]s -name mine

Stop with Ctrl-C.
`, def.Name(), base), nil
}

var demoCustomers = []string{"ada", "grace", "linus", "barbara", "ken", "margaret"}

// demoWorkers simulate the services of the order flow: each task takes a
// while, and the payment gateway and the label service sometimes fail
// (retried by the workflow's retry policy).
type demoWorkers struct{}

func (demoWorkers) work(ctx context.Context, minMS, maxMS int) error {
	select {
	case <-time.After(time.Duration(minMS+rand.IntN(maxMS-minMS+1)) * time.Millisecond):
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (d demoWorkers) payment(ctx context.Context, t *worker.Task) (*worker.Result, error) {
	var o struct {
		OrderID string  `json:"orderId"`
		Amount  float64 `json:"amount"`
	}
	if err := t.BindWorkflowInput(&o); err != nil {
		return nil, err
	}
	if err := d.work(ctx, 100, 600); err != nil {
		return nil, err
	}
	if rand.IntN(8) == 0 {
		return nil, worker.WithCode("gateway_timeout", errors.New("payment gateway: timeout"))
	}
	return &worker.Result{
		Output: map[string]any{"paymentId": "pay-" + o.OrderID, "amount": o.Amount, "worker": "demo-payments"},
		State:  map[string]any{"paid": o.Amount},
	}, nil
}

func (d demoWorkers) inventory(ctx context.Context, t *worker.Task) (*worker.Result, error) {
	if err := d.work(ctx, 100, 800); err != nil {
		return nil, err
	}
	return &worker.Result{Output: map[string]any{"reservation": "res-" + t.InstanceID, "worker": "demo-warehouse"}}, nil
}

func (d demoWorkers) shipping(ctx context.Context, t *worker.Task) (*worker.Result, error) {
	if err := d.work(ctx, 200, 1000); err != nil {
		return nil, err
	}
	switch t.Command {
	case "label":
		if rand.IntN(6) == 0 {
			return nil, errors.New("label service: 503")
		}
		return &worker.Result{Output: map[string]any{"label": "LBL-" + t.InstanceID, "worker": "demo-shipping"}}, nil
	case "ship":
		return &worker.Result{Output: map[string]any{"tracking": "TRK-" + t.InstanceID, "worker": "demo-shipping"}}, nil
	}
	return nil, worker.NonRetryable(fmt.Errorf("shipping: unknown command %q", t.Command))
}

func (d demoWorkers) notify(ctx context.Context, t *worker.Task) (*worker.Result, error) {
	var o struct {
		OrderID  string `json:"orderId"`
		Customer string `json:"customer"`
	}
	if err := t.BindWorkflowInput(&o); err != nil {
		return nil, err
	}
	if err := d.work(ctx, 50, 200); err != nil {
		return nil, err
	}
	return &worker.Result{
		Output:  map[string]any{"sent": true, "to": o.Customer, "worker": "demo-notifications"},
		Effects: []worker.Effect{worker.LogEffect("customer notified", map[string]any{"order": o.OrderID, "customer": o.Customer})},
	}, nil
}
