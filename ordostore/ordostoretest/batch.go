package ordostoretest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// exerciseGetInstances checks ordostore.InstancesGetter on stores that
// implement it.
func exerciseGetInstances(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	probe := newStore(t)
	if _, ok := probe.(ordostore.InstancesGetter); !ok {
		t.Skip("the store does not implement ordostore.InstancesGetter")
	}
	setup := func(t *testing.T) ordostore.InstancesGetter {
		s := newStore(t)
		var batch []*ordostore.Transition
		for i := range 5 {
			inst := newInstance(fmt.Sprintf("inst-%d", i), "order")
			inst.BusinessKey = fmt.Sprintf("b%d", i)
			batch = append(batch, createOf(inst))
		}
		applyOK(ctx, t, s, batch...)
		return s.(ordostore.InstancesGetter)
	}

	t.Run("ReturnsThoseThatExist", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		insts, err := s.GetInstances(ctx, []string{"inst-3", "nope", "inst-0", "inst-4"})
		require.NoError(t, err)
		got := instanceIDs(insts)
		slices.Sort(got)
		require.Equal(t, []string{"inst-0", "inst-3", "inst-4"}, got)
		for _, inst := range insts {
			require.Equal(t, "b"+inst.ID[len("inst-"):], inst.BusinessKey, "every field is read")
			require.JSONEq(t, string(newInstance(inst.ID, "order").State), string(inst.State))
			require.Equal(t, int64(1), inst.Seq)
		}
	})

	t.Run("NoIDs", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		insts, err := s.GetInstances(ctx, nil)
		require.NoError(t, err)
		require.NotNil(t, insts)
		require.Empty(t, insts)
	})

	t.Run("ManyIDs", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ids := make([]string, 5000)
		for i := range ids {
			ids[i] = fmt.Sprintf("inst-%d", i)
		}
		insts, err := s.GetInstances(ctx, ids)
		require.NoError(t, err)
		require.Len(t, insts, 5)
	})
}

// exerciseDueTasks checks ordostore.DueTasksReader on stores that implement
// it.
func exerciseDueTasks(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	probe := newStore(t)
	if _, ok := probe.(ordostore.DueTasksReader); !ok {
		t.Skip("the store does not implement ordostore.DueTasksReader")
	}
	due := func(t *testing.T, s ordostore.Store, now time.Time, after *ordostore.Task, limit int) []ordostore.DueTask {
		t.Helper()
		params := &ordostore.DueTasksParams{Kind: ordotype.TaskStep, Queue: "q", Now: now, Limit: limit}
		if after != nil {
			params.AfterDueAt, params.AfterID = after.DueAt, after.ID
		}
		page, err := s.(ordostore.DueTasksReader).DueTasks(ctx, params)
		require.NoError(t, err)
		return page
	}
	ids := func(page []ordostore.DueTask) []int64 {
		out := make([]int64, 0, len(page))
		for _, d := range page {
			out = append(out, d.Task.ID)
		}
		return out
	}

	t.Run("DueUnleasedInOrderWithState", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		inst := newInstance("inst-1", "order")
		got := create(ctx, t, s, inst,
			newTask("inst-1", ordotype.TaskStep, "q", at(time.Second)),
			newTask("inst-1", ordotype.TaskStep, "q", t0),
			newTask("inst-1", ordotype.TaskStep, "other", t0),
			newTask("inst-1", ordotype.TaskEffect, "q", t0),
			newTask("inst-1", ordotype.TaskStep, "q", at(time.Hour)),
			newTask("inst-1", ordotype.TaskStep, "q", t0),
		)
		page := due(t, s, at(time.Second), nil, 10)
		require.Equal(t, []int64{got[1], got[5], got[0]}, ids(page))
		for i, d := range page {
			requireTask(t, newTask("inst-1", ordotype.TaskStep, "q", []time.Time{t0, t0, at(time.Second)}[i]), d.Task)
			require.JSONEq(t, string(inst.State), string(d.InstanceState))
		}

		// Reading leases nothing; a leased task is left out.
		require.Len(t, due(t, s, at(time.Second), nil, 10), 3)
		require.Len(t, claim(ctx, t, s, "worker", t0, []ordotype.TaskKind{ordotype.TaskStep}, "q"), 2)
		require.Equal(t, []int64{got[0]}, ids(due(t, s, at(time.Second), nil, 10)))
	})

	t.Run("PagesFromTheLastTask", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		var tasks []*ordostore.Task
		for i := range 7 {
			tasks = append(tasks, newTask("inst-1", ordotype.TaskStep, "q", at(time.Duration(i%3)*time.Second)))
		}
		create(ctx, t, s, newInstance("inst-1", "order"), tasks...)
		want := ids(due(t, s, at(time.Hour), nil, 100))
		require.Len(t, want, 7)
		var got []int64
		var last *ordostore.Task
		for {
			page := due(t, s, at(time.Hour), last, 2)
			got = append(got, ids(page)...)
			if len(page) < 2 {
				break
			}
			last = page[len(page)-1].Task
		}
		require.Equal(t, want, got)
		require.Empty(t, due(t, s, at(time.Hour), &ordostore.Task{ID: want[6], DueAt: at(2 * time.Second)}, 2))
	})
}
