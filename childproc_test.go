package ordo_test

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
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
