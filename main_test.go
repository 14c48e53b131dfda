package ordo_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: an
// engine that is closed must stop every worker, scheduler and committer.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
