// Package ordocli implements the ordo command's verbs.
package ordocli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ordoflow/ordo/internal/bench"
)

// Exit codes.
const (
	ExitOK       = 0
	ExitFailed   = 1
	ExitUsage    = 2
	ExitNotFound = 3
	ExitAuth     = 4
)

// usageError is a mistake in the command line.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }

// Main runs the ordo command with args and returns the exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "ordo:", err)
		var ec interface{ ExitCode() int }
		if errors.As(err, &ec) {
			return ec.ExitCode()
		}
		var ue *usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(stderr, "Try: ordo help")
			return ExitUsage
		}
		return ExitFailed
	}
	return ExitOK
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "ordo",
		Short:         "Ordo runs durable workflows",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.AddCommand(append([]*cobra.Command{newVersion(), newBench()}, serverCommands()...)...)
	root.AddCommand(maintenanceCommands()...)
	return root
}

// Version is the release this binary was built from; set with -ldflags.
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newVersion() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := map[string]string{"version": version(), "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ordo %s (%s %s/%s)\n", v["version"], v["go"], v["os"], v["arch"])
			return nil
		},
	}
	addOutput(cmd, &output)
	return cmd
}

func newBench() *cobra.Command {
	var (
		opts              bench.Options
		output            string
		cpuProfile        string
		serverURL, token  string
		workerConcurrency int
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run a reference workload end to end and print throughput, latency and memory",
		Long: `Run a reference workload in-process on a fresh SQLite file with durable
commits (synchronous=FULL): --concurrency starters each start an instance and
wait for its end, until --instances have completed.

Workloads:
  linear3  three sequential no-op steps
  order    payment -> (inventory || label, + gift for 1 in 4) -> ship -> notify, no-op handlers
  timers   one timer step per instance, all due at the same instant T a few
           seconds after the last start (with --spread D, due evenly from T
           to T+D); prints timers fired per second and lateness (completion
           - due time) instead of start-to-finish latency

With --server URL, the workload runs through a running Ordo server instead:
every step is a task on a worker queue, done by --workers worker SDK workers
(default 4) in this process, each running --worker-concurrency tasks at once
(default 16); the instances are started through the API. The workload is
then order unless --workload says otherwise. The token needs the admin role
(the run deploys its definition).`,
		Example: "  ordo bench --workload linear3 --instances 10000 --concurrency 50\n  ordo bench --workload order --instances 10000 --concurrency 100 -o json\n  ordo bench --workload timers --instances 100000 --concurrency 100\n  ordo bench --workload timers --instances 100000 --concurrency 100 --spread 1s\n  ordo bench --server http://127.0.0.1:7070 --instances 5000 --concurrency 64",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Instances <= 0 || opts.Concurrency <= 0 {
				return &usageError{errors.New("--instances and --concurrency must be positive")}
			}
			if opts.Spread < 0 || (opts.Spread > 0 && opts.Workload != bench.WorkloadTimers) {
				return &usageError{errors.New("--spread is a positive duration, for --workload timers only")}
			}
			if _, err := bench.Definition(opts.Workload); err != nil {
				return &usageError{err}
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			var (
				res *bench.Result
				err error
			)
			if serverURL != "" {
				res, err = runServerBench(cmd, serverURL, token, workerConcurrency, opts)
			} else {
				res, err = bench.Run(cmd.Context(), opts)
			}
			if err != nil {
				return err
			}
			if output == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
			}
			res.Print(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Workload, "workload", bench.WorkloadLinear3, "workload: "+strings.Join(bench.Workloads, ", "))
	f.IntVar(&opts.Instances, "instances", 1000, "instances to run")
	f.IntVar(&opts.Concurrency, "concurrency", 50, "concurrent starters, each starting an instance and waiting for its end")
	f.StringVar(&opts.DB, "db", "", "SQLite file to create (must not exist; default: a temporary file), or a postgres:// URL (the run uses a fresh schema, dropped afterwards)")
	f.IntVar(&opts.Workers, "workers", 0, "step worker goroutines (default: the engine's); with --server, worker SDK workers (default 4)")
	f.IntVar(&opts.Nodes, "nodes", 1, "engines on one PostgreSQL schema: the first runs the api role, the others executor,effects,timers")
	f.DurationVar(&opts.Spread, "spread", 0, "timers workload: spread the due times evenly over this span after T instead of all at T")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	f.StringVar(&serverURL, "server", "", "run through the Ordo server at this URL, with remote workers in this process")
	f.StringVar(&token, "token", "", "with --server: bearer token with the admin role (env ORDO_TOKEN)")
	f.IntVar(&workerConcurrency, "worker-concurrency", 0, "with --server: tasks each worker runs at once (default 16)")
	addOutput(cmd, &output)
	return cmd
}

func addOutput(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVarP(output, "output", "o", "text", "output format: text or json")
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if *output != "text" && *output != "json" {
			return &usageError{fmt.Errorf("--output must be text or json, not %q", *output)}
		}
		return nil
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return &usageError{fmt.Errorf("%s takes no arguments, got %q", cmd.CommandPath(), args)}
	}
	return nil
}
