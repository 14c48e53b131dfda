package ordostoretest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// exerciseTaskList checks ListTasks and GetTask: the reads of open tasks
// that remote workers and people are shown.
func exerciseTaskList(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	list := func(t *testing.T, s ordostore.Store, p *ordostore.ListTasksParams) []*ordostore.Task {
		t.Helper()
		got, err := s.ListTasks(ctx, p)
		require.NoError(t, err)
		require.NotNil(t, got)
		return got
	}

	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		a := create(ctx, t, s, newInstance("inst-a", "order"),
			newTask("inst-a", ordotype.TaskStep, "payment", t0),
			newTask("inst-a", ordotype.TaskStep, "ordo.human", at(time.Hour)),
			newTask("inst-a", ordotype.TaskEffect, "http", t0),
		)
		b := create(ctx, t, s, newInstance("inst-b", "order"),
			newTask("inst-b", ordotype.TaskStep, "payment", t0),
		)

		require.Equal(t, []int64{a[0], a[1], a[2], b[0]}, taskIDs(list(t, s, &ordostore.ListTasksParams{})), "all, in ID order")
		require.Equal(t, []int64{a[0], a[1], b[0]}, taskIDs(list(t, s, &ordostore.ListTasksParams{Kinds: []ordotype.TaskKind{ordotype.TaskStep}})))
		require.Equal(t, []int64{a[0], b[0]}, taskIDs(list(t, s, &ordostore.ListTasksParams{Queues: []string{"payment"}})))
		require.Equal(t, []int64{a[0], a[1], b[0]}, taskIDs(list(t, s, &ordostore.ListTasksParams{Queues: []string{"payment", "ordo.human"}})))
		require.Equal(t, []int64{b[0]}, taskIDs(list(t, s, &ordostore.ListTasksParams{InstanceID: "inst-b"})))
		require.Equal(t, []int64{a[0]}, taskIDs(list(t, s, &ordostore.ListTasksParams{InstanceID: "inst-a", Queues: []string{"payment"}, Kinds: []ordotype.TaskKind{ordotype.TaskStep}})))
		require.Empty(t, list(t, s, &ordostore.ListTasksParams{InstanceID: "nobody"}))
		require.Empty(t, list(t, s, &ordostore.ListTasksParams{Queues: []string{"none"}}))

		got := list(t, s, &ordostore.ListTasksParams{Queues: []string{"ordo.human"}})
		require.Len(t, got, 1)
		requireTask(t, newTask("inst-a", ordotype.TaskStep, "ordo.human", at(time.Hour)), got[0])
	})

	t.Run("Pages", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var tasks []*ordostore.Task
		for range 5 {
			tasks = append(tasks, newTask("inst-1", ordotype.TaskStep, "q", t0))
		}
		ids := create(ctx, t, s, newInstance("inst-1", "order"), tasks...)

		first := list(t, s, &ordostore.ListTasksParams{Limit: 2})
		require.Equal(t, ids[:2], taskIDs(first))
		second := list(t, s, &ordostore.ListTasksParams{Limit: 2, AfterID: first[1].ID})
		require.Equal(t, ids[2:4], taskIDs(second))
		third := list(t, s, &ordostore.ListTasksParams{Limit: 2, AfterID: second[1].ID})
		require.Equal(t, ids[4:], taskIDs(third))
		require.Empty(t, list(t, s, &ordostore.ListTasksParams{Limit: 2, AfterID: ids[4]}))
	})

	t.Run("LeasedTasksAreListed", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		ids := create(ctx, t, s, newInstance("inst-1", "order"), newTask("inst-1", ordotype.TaskStep, "q", t0))
		claimed := claim(ctx, t, s, "worker:w1", t0, []ordotype.TaskKind{ordotype.TaskStep}, "q")
		require.Len(t, claimed, 1)

		got := list(t, s, &ordostore.ListTasksParams{})
		require.Len(t, got, 1)
		require.Equal(t, ids[0], got[0].ID)
		require.Equal(t, "worker:w1", got[0].LeaseOwner)
		require.Equal(t, 1, got[0].Claim)
		require.True(t, at(time.Minute).Equal(got[0].LeaseUntil))
	})

	t.Run("GetTask", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		_, err := s.GetTask(ctx, 1)
		require.ErrorIs(t, err, ordotype.ErrNotFound, "no task yet")
		require.NotErrorIs(t, err, ordotype.ErrDuplicate)

		want := newTask("inst-1", ordotype.TaskStep, "payment", at(time.Second))
		ids := create(ctx, t, s, newInstance("inst-1", "order"), want, newTask("inst-1", ordotype.TaskStep, "other", t0))
		got, err := s.GetTask(ctx, ids[0])
		require.NoError(t, err)
		require.Equal(t, ids[0], got.ID)
		require.Equal(t, 0, got.Claim)
		require.Empty(t, got.LeaseOwner)
		requireTask(t, want, got)

		claimed := claim(ctx, t, s, "worker:w1", at(time.Second), []ordotype.TaskKind{ordotype.TaskStep}, "payment")
		require.Len(t, claimed, 1)
		got, err = s.GetTask(ctx, ids[0])
		require.NoError(t, err)
		require.Equal(t, 1, got.Claim)
		require.Equal(t, "worker:w1", got.LeaseOwner)

		// Done: the task is gone, and GetTask says it existed.
		tr := advanceOf("inst-1", 1, 1, `{"step":1}`)
		tr.Complete = &ordostore.TaskRef{ID: ids[0], Claim: 1}
		applyOK(ctx, t, s, tr)
		_, err = s.GetTask(ctx, ids[0])
		require.ErrorIs(t, err, ordotype.ErrNotFound)
		require.ErrorIs(t, err, ordotype.ErrDuplicate, "a task that is done is told apart from one that never was")

		// An ID never given is not found, and not done.
		_, err = s.GetTask(ctx, ids[1]+1000)
		require.ErrorIs(t, err, ordotype.ErrNotFound)
		require.NotErrorIs(t, err, ordotype.ErrDuplicate)
		_, err = s.GetTask(ctx, 0)
		require.NotErrorIs(t, err, ordotype.ErrDuplicate)
		_, err = s.GetTask(ctx, -1)
		require.ErrorIs(t, err, ordotype.ErrNotFound)
	})
}
