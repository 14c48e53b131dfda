package ordostoretest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

func exercisePrune(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	// finish moves instance id (at seq 1) to status, finished at when.
	finish := func(t *testing.T, s ordostore.Store, id string, status ordotype.Status, when time.Time) {
		t.Helper()
		tr := advanceOf(id, 1, 1, `{"done":true}`)
		tr.Update.Status = status
		if status.Terminal() {
			tr.Update.FinishedAt = when
		}
		applyOK(ctx, t, s, tr)
	}
	exists := func(t *testing.T, s ordostore.Store, id string) bool {
		t.Helper()
		_, err := s.GetInstance(ctx, id)
		if err != nil {
			require.ErrorIs(t, err, ordotype.ErrNotFound)
			return false
		}
		return true
	}

	t.Run("DeletesFinishedBeforeCutoffWithJournalsAndTasks", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		cutoff := at(24 * time.Hour)
		old := map[string]ordotype.Status{
			"old-completed":   ordotype.StatusCompleted,
			"old-failed":      ordotype.StatusFailed,
			"old-compensated": ordotype.StatusCompensated,
			"old-cancelled":   ordotype.StatusCancelled,
		}
		for id, status := range old {
			create(ctx, t, s, newInstance(id, "order"), newTask(id, ordotype.TaskEffect, "log", t0))
			finish(t, s, id, status, at(time.Hour))
		}
		// Kept: finished after the cutoff, or at it; not finished at all.
		create(ctx, t, s, newInstance("new-completed", "order"))
		finish(t, s, "new-completed", ordotype.StatusCompleted, at(48*time.Hour))
		create(ctx, t, s, newInstance("at-cutoff", "order"))
		finish(t, s, "at-cutoff", ordotype.StatusCompleted, cutoff)
		create(ctx, t, s, newInstance("running", "order"), newTask("running", ordotype.TaskStep, "q", t0))
		create(ctx, t, s, newInstance("review", "order"))
		finish(t, s, "review", ordotype.StatusReview, time.Time{})

		n, err := s.PruneInstances(ctx, &ordostore.PruneParams{FinishedBefore: cutoff, DryRun: true})
		require.NoError(t, err)
		require.Equal(t, len(old), n)
		for id := range old {
			require.True(t, exists(t, s, id), "a dry run deleted %s", id)
		}

		n, err = s.PruneInstances(ctx, &ordostore.PruneParams{FinishedBefore: cutoff})
		require.NoError(t, err)
		require.Equal(t, len(old), n)
		for id := range old {
			require.False(t, exists(t, s, id), "%s was not pruned", id)
			require.Empty(t, listEvents(ctx, t, s, id), "the journal of %s was left", id)
			require.Zero(t, countTasks(ctx, t, s, id), "the tasks of %s were left", id)
		}
		for _, id := range []string{"new-completed", "at-cutoff", "running", "review"} {
			require.True(t, exists(t, s, id), "%s was pruned", id)
			require.NotEmpty(t, listEvents(ctx, t, s, id))
		}
		require.Equal(t, 1, countTasks(ctx, t, s, "running"))

		n, err = s.PruneInstances(ctx, &ordostore.PruneParams{FinishedBefore: cutoff})
		require.NoError(t, err)
		require.Zero(t, n, "a second prune found more")
	})

	t.Run("InBatches", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		const total = 23
		for i := range total {
			id := fmt.Sprintf("inst-%02d", i)
			create(ctx, t, s, newInstance(id, "order"))
			finish(t, s, id, ordotype.StatusCompleted, at(time.Minute))
		}
		n, err := s.PruneInstances(ctx, &ordostore.PruneParams{FinishedBefore: at(time.Hour), Batch: 5})
		require.NoError(t, err)
		require.Equal(t, total, n)
		got, err := s.ListInstances(ctx, &ordostore.ListInstancesParams{})
		require.NoError(t, err)
		require.Empty(t, got)
	})

	t.Run("RejectsBadParams", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		_, err := s.PruneInstances(ctx, &ordostore.PruneParams{})
		require.ErrorIs(t, err, ordotype.ErrInvalid)
		_, err = s.PruneInstances(ctx, &ordostore.PruneParams{FinishedBefore: t0, Batch: -1})
		require.ErrorIs(t, err, ordotype.ErrInvalid)
	})
}
