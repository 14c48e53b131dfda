package ordocli

import (
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/ordoflow/ordo/internal/bench"
	"github.com/ordoflow/ordo/ordoclient"
)

// runServerBench runs `ordo bench --server URL`.
func runServerBench(cmd *cobra.Command, serverURL, token string, workerConcurrency int, opts bench.Options) (*bench.Result, error) {
	if opts.DB != "" {
		return nil, &usageError{errors.New("--db and --server do not go together: --server runs on the server's database")}
	}
	if opts.Workers < 0 || workerConcurrency < 0 {
		return nil, &usageError{errors.New("--workers and --worker-concurrency must be positive")}
	}
	workload := opts.Workload
	if !cmd.Flags().Changed("workload") {
		workload = bench.WorkloadOrder
	}
	if token == "" {
		token = os.Getenv("ORDO_TOKEN")
	}
	if _, err := ordoclient.New(serverURL, nil); err != nil {
		return nil, &usageError{err}
	}
	res, err := bench.RunServer(cmd.Context(), bench.ServerOptions{
		Server:            serverURL,
		Token:             token,
		Workload:          workload,
		Instances:         opts.Instances,
		Concurrency:       opts.Concurrency,
		Workers:           opts.Workers,
		WorkerConcurrency: workerConcurrency,
	})
	if err != nil {
		return nil, apiError(err, serverURL)
	}
	return res, nil
}
