package ordo_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordosqlite"
	"github.com/ordoflow/ordo/ordostore"
)

// failingStore is a real store whose next Apply calls that complete a task
// fail as a whole, as they do while the database restarts.
type failingStore struct {
	ordostore.Store
	failures atomic.Int64 // completions still to fail
	failed   atomic.Int64
}

func (s *failingStore) Apply(ctx context.Context, batch []*ordostore.Transition) ([]ordostore.TransitionResult, error) {
	for _, tr := range batch {
		if tr.Complete != nil && s.failures.Add(-1) >= 0 {
			s.failed.Add(1)
			return nil, errors.New("connection refused (injected)")
		}
	}
	return s.Store.Apply(ctx, batch)
}

// TestEngine_StepOutcomeSurvivesStoreFailures: a step's outcome whose
// commit fails is kept and committed again, without running the step again
// and without waiting for its lease (five minutes) to run out.
func TestEngine_StepOutcomeSurvivesStoreFailures(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	sqlite, err := ordosqlite.Open(ctx, filepath.Join(t.TempDir(), "ordo.db"), nil)
	require.NoError(t, err)
	store := &failingStore{Store: sqlite}
	store.failures.Store(3)
	eng, err := ordo.New(ctx, store, &ordo.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	defer func() {
		require.NoError(t, eng.Close(context.WithoutCancel(ctx)))
		require.NoError(t, sqlite.Close())
	}()

	var runs atomic.Int64
	def := ordo.NewWorkflow("flaky-store").
		Step(ordo.Task("a", "count")).
		Step(ordo.Task("b", "count").After("a")).
		MustBuild()
	_, err = eng.Register(ctx, def, ordo.Handlers{"count": func(context.Context, *ordo.StepRequest) (ordo.Result, error) {
		runs.Add(1)
		return ordo.Result{}, nil
	}})
	require.NoError(t, err)
	id, err := eng.Start(ctx, "flaky-store", nil)
	require.NoError(t, err)
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	inst, err := eng.Wait(waitCtx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.Equal(t, int64(3), store.failed.Load())
	require.Equal(t, int64(2), runs.Load(), "a step ran again instead of its outcome being committed again")
}
