package ordostoretest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// exerciseCounts checks CountInstances and CountQueues, which the server's
// metrics read at each scrape.
func exerciseCounts(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	t.Run("CountInstances", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		counts, err := s.CountInstances(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, counts)

		withStatus := func(id, workflow string, status ordotype.Status) *ordostore.Instance {
			inst := newInstance(id, workflow)
			inst.Status = status
			return inst
		}
		create(ctx, t, s, withStatus("a-1", "order", ordotype.StatusRunning))
		create(ctx, t, s, withStatus("a-2", "order", ordotype.StatusWaiting))
		create(ctx, t, s, withStatus("a-3", "order", ordotype.StatusWaiting))
		create(ctx, t, s, withStatus("a-4", "order", ordotype.StatusReview))
		create(ctx, t, s, withStatus("b-1", "billing", ordotype.StatusWaiting))
		create(ctx, t, s, withStatus("b-2", "billing", ordotype.StatusRunning))
		// b-2 ends: it is counted under its new status.
		tr := advanceOf("b-2", 1, 1, `{}`)
		tr.Update.Status = ordotype.StatusCompleted
		tr.Update.FinishedAt = at(time.Hour)
		applyOK(ctx, t, s, tr)

		counts, err = s.CountInstances(ctx, &ordostore.CountInstancesParams{})
		require.NoError(t, err)
		require.Equal(t, []ordostore.InstanceCount{
			{Workflow: "billing", Status: ordotype.StatusCompleted, N: 1},
			{Workflow: "billing", Status: ordotype.StatusWaiting, N: 1},
			{Workflow: "order", Status: ordotype.StatusReview, N: 1},
			{Workflow: "order", Status: ordotype.StatusRunning, N: 1},
			{Workflow: "order", Status: ordotype.StatusWaiting, N: 2},
		}, counts)

		counts, err = s.CountInstances(ctx, &ordostore.CountInstancesParams{
			Statuses: []ordotype.Status{ordotype.StatusWaiting, ordotype.StatusReview},
		})
		require.NoError(t, err)
		require.Equal(t, []ordostore.InstanceCount{
			{Workflow: "billing", Status: ordotype.StatusWaiting, N: 1},
			{Workflow: "order", Status: ordotype.StatusReview, N: 1},
			{Workflow: "order", Status: ordotype.StatusWaiting, N: 2},
		}, counts)
	})

	t.Run("CountQueues", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		counts, err := s.CountQueues(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, counts)

		ids := create(ctx, t, s, newInstance("inst-1", "order"),
			newTask("inst-1", ordotype.TaskStep, "payment", t0),
			newTask("inst-1", ordotype.TaskStep, "payment", at(time.Hour)),
			newTask("inst-1", ordotype.TaskStep, "shipping", t0),
			newTask("inst-1", ordotype.TaskEffect, "http", t0),
		)
		create(ctx, t, s, newInstance("inst-2", "order"), newTask("inst-2", ordotype.TaskStep, "payment", t0))

		// Leased tasks count; a done task does not.
		require.Len(t, claim(ctx, t, s, "worker", t0, []ordotype.TaskKind{ordotype.TaskStep}, "payment"), 2)
		tr := advanceOf("inst-1", 1, 1, `{}`)
		tr.Complete = &ordostore.TaskRef{ID: ids[2]}
		applyOK(ctx, t, s, tr)

		counts, err = s.CountQueues(ctx, &ordostore.CountQueuesParams{Now: t0})
		require.NoError(t, err)
		require.Equal(t, []ordostore.QueueCount{
			{Kind: ordotype.TaskEffect, Queue: "http", N: 1},
			{Kind: ordotype.TaskStep, Queue: "payment", N: 3},
		}, counts)

		// The claim leased two tasks for a minute: after it, both leases
		// have expired. Released leases are not expired ones.
		counts, err = s.CountQueues(ctx, &ordostore.CountQueuesParams{Now: at(2 * time.Minute)})
		require.NoError(t, err)
		require.Equal(t, []ordostore.QueueCount{
			{Kind: ordotype.TaskEffect, Queue: "http", N: 1},
			{Kind: ordotype.TaskStep, Queue: "payment", N: 3, Expired: 2},
		}, counts)
		_, err = s.ReleaseLeases(ctx, "worker")
		require.NoError(t, err)
		counts, err = s.CountQueues(ctx, &ordostore.CountQueuesParams{Now: at(2 * time.Minute)})
		require.NoError(t, err)
		require.Zero(t, counts[1].Expired)
	})
}
