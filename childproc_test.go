package ordo_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
)

// The crash tests run the engine in a child process: this test binary run
// again with one test selected and an environment variable naming the
// database, so the child can be killed with SIGKILL.

// childProcess returns the command that runs test in a child process with
// env set to db.
func childProcess(test, env, db string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+db)
	cmd.Stderr = os.Stderr
	return cmd
}

// runToEnd runs cmd and requires it to exit 0 within three minutes; what
// names what it does, for the failure message.
func runToEnd(t *testing.T, cmd *exec.Cmd, what string) {
	t.Helper()
	done := make(chan error, 1)
	require.NoError(t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.NoError(t, err, "the last child %s", what)
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		t.Fatalf("stuck: the last child did not finish in 3 minutes (it %s)", what)
	}
}

// childExit ends a child process that failed, with a code that says where.
func childExit(code int, what string, err error) {
	fmt.Fprintf(os.Stderr, "child: %s: %v\n", what, err)
	os.Exit(code)
}

// runChildInstances, in a child process, starts n instances of workflow
// from g goroutines (input gives the i-th input; its idempotency key makes
// a restarted child start none twice), waits for every one to end, closes
// the engine and exits 0.
func runChildInstances(eng *ordo.Engine, workflow string, n, g int, input func(i int) any) {
	ctx := context.Background()
	ids := make([]string, n)
	var wg sync.WaitGroup
	for k := range g {
		wg.Go(func() {
			for i := k; i < n; i += g {
				id, err := eng.Start(ctx, workflow, input(i))
				if err != nil {
					childExit(12, "start", err)
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if _, err := eng.Wait(ctx, id); err != nil {
			childExit(13, "wait", err)
		}
	}
	if err := eng.Close(ctx); err != nil {
		childExit(14, "close", err)
	}
	os.Exit(0)
}
