// Command worker is a remote worker for the order-remote workflow
// (workflow.yaml next to it): a Go service that takes the workflow's tasks
// from an Ordo server's queues with package worker, and does them.
//
// Start a server, deploy the workflow, run a worker or two, start orders:
//
//	ordo dev
//	ordo deploy examples/worker/workflow.yaml
//	go run ./examples/worker -name w1 &
//	go run ./examples/worker -name w2 &
//	ordo start order-remote --input '{"orderId":"o-1","customer":"ada","amount":42}'
//
// Each step's output carries the name of the worker that did it, so the
// journal (ordo journal ID) shows who did what. -delay makes each task take
// longer; -pause-file makes the worker hold every task it takes while that
// file exists, like a service that hangs: kill the worker then, and its
// tasks go to another worker when their leases end.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ordoflow/ordo/worker"
)

func main() {
	cfg := config{}
	flag.StringVar(&cfg.server, "server", envOr("ORDO_SERVER", "http://127.0.0.1:7070"), "Ordo server URL (env ORDO_SERVER)")
	flag.StringVar(&cfg.token, "token", os.Getenv("ORDO_TOKEN"), "bearer token with the operator role (env ORDO_TOKEN)")
	flag.StringVar(&cfg.name, "name", "", "worker name (default hostname-pid)")
	flag.IntVar(&cfg.concurrency, "concurrency", 8, "tasks run at once")
	flag.StringVar(&cfg.queues, "queues", strings.Join(allQueues, ","), "queues to take tasks from")
	flag.DurationVar(&cfg.delay, "delay", 0, "simulated work per task")
	flag.StringVar(&cfg.pauseFile, "pause-file", "", "while this file exists, hold every task taken (simulates a hung service)")
	flag.BoolVar(&cfg.verbose, "v", false, "print a line per task")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

type config struct {
	server, token, name, queues, pauseFile string
	concurrency                            int
	delay                                  time.Duration
	verbose                                bool
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, cfg config) error {
	w, err := worker.New(worker.Options{
		Server:      cfg.server,
		Token:       cfg.token,
		Name:        cfg.name,
		Concurrency: cfg.concurrency,
		PollWait:    10 * time.Second,
		StopTimeout: 10 * time.Second,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	h := &handlers{name: w.Name(), delay: cfg.delay, pauseFile: cfg.pauseFile, verbose: cfg.verbose}
	all := h.all()
	for _, q := range strings.Split(cfg.queues, ",") {
		q = strings.TrimSpace(q)
		fn, ok := all[q]
		if !ok {
			return fmt.Errorf("-queues: unknown queue %q (this worker serves %s)", q, strings.Join(allQueues, ", "))
		}
		w.Handle(q, h.trace(fn))
	}
	fmt.Printf("worker %s polling %s on %s\n", w.Name(), cfg.queues, cfg.server)
	err = w.Run(ctx)
	fmt.Printf("worker %s stopped\n", w.Name())
	return err
}
