package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/server"
	"github.com/ordoflow/ordo/worker"
)

// A worker takes the tasks of the "payment" queue from an Ordo server and
// completes them. The server here runs in-process on a temporary SQLite
// file; a real worker would be given the URL of `ordo server`.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ordo-worker-example-")
	defer os.RemoveAll(dir)

	// The server: an engine on an SQLite file, and its HTTP API.
	eng, err := ordo.Open(ctx, ordo.SQLite(filepath.Join(dir, "ordo.db")), &ordo.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer eng.Close(ctx)
	srv, err := server.New(&server.Options{Engine: eng, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()

	client, _ := ordoclient.New(hs.URL, nil)
	_, err = client.Deploy(ctx, []byte(`
workflow: pay
steps:
  - id: charge
    task: {queue: payment, command: charge}
`), "application/yaml")
	if err != nil {
		panic(err)
	}

	// The worker.
	w, err := worker.New(worker.Options{Server: hs.URL, Name: "payments-1", PollWait: time.Second})
	if err != nil {
		panic(err)
	}
	w.Handle("payment", func(ctx context.Context, t *worker.Task) (*worker.Result, error) {
		var order struct {
			OrderID string `json:"orderId"`
			Amount  int    `json:"amount"`
		}
		if err := t.Bind(&order); err != nil {
			return nil, err
		}
		if order.Amount <= 0 {
			return nil, worker.NonRetryable(worker.WithCode("invalid_amount", fmt.Errorf("amount %d", order.Amount)))
		}
		return &worker.Result{Output: map[string]any{"charged": order.Amount, "order": order.OrderID}}, nil
	})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- w.Run(wctx) }()

	res, err := client.Start(ctx, "pay", &ordoclient.StartRequest{Input: []byte(`{"orderId":"o-1","amount":42}`)})
	if err != nil {
		panic(err)
	}
	for {
		inst, err := client.Get(ctx, res.ID)
		if err != nil {
			panic(err)
		}
		if inst.Status == ordo.StatusCompleted {
			fmt.Println(inst.Status, string(inst.Output))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	stop() // Run stops polling, lets handlers in flight finish, and returns
	fmt.Println(<-done)
	// Output:
	// completed {"charged":42,"order":"o-1"}
	// <nil>
}
