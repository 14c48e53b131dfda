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

func exerciseTasks(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	step := []ordotype.TaskKind{ordotype.TaskStep}
	queues := func(tasks []*ordostore.Task) []string {
		out := make([]string, 0, len(tasks))
		for _, task := range tasks {
			out = append(out, task.Queue)
		}
		return out
	}
	nextDue := func(t *testing.T, s ordostore.Store, kinds []ordotype.TaskKind, queues ...string) (time.Time, bool) {
		t.Helper()
		due, ok, err := s.NextTaskDue(ctx, &ordostore.NextTaskDueParams{Kinds: kinds, Queues: queues})
		require.NoError(t, err)
		return due, ok
	}

	t.Run("ClaimsOnlyDueTasks", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"),
			newTask("inst-1", ordotype.TaskStep, "late", at(time.Second)),
			newTask("inst-1", ordotype.TaskStep, "now", t0),
			newTask("inst-1", ordotype.TaskStep, "early", at(-time.Second)),
		)
		require.Equal(t, []string{"early", "now"}, queues(claim(ctx, t, s, "worker", t0, step)))
		require.Empty(t, claim(ctx, t, s, "worker", at(time.Millisecond), step))
		require.Equal(t, []string{"late"}, queues(claim(ctx, t, s, "worker", at(time.Second), step)))
	})

	t.Run("OldestDueFirstThenID", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		ids := create(ctx, t, s, newInstance("inst-1", "order"),
			newTask("inst-1", ordotype.TaskStep, "q", at(2*time.Second)),
			newTask("inst-1", ordotype.TaskStep, "q", t0),
			newTask("inst-1", ordotype.TaskStep, "q", at(time.Second)),
			newTask("inst-1", ordotype.TaskStep, "q", t0),
		)
		want := []int64{ids[1], ids[3], ids[2], ids[0]}
		if ids[3] < ids[1] {
			want[0], want[1] = ids[3], ids[1]
		}
		require.Equal(t, want, taskIDs(claim(ctx, t, s, "worker", at(time.Hour), step)))
	})

	t.Run("KindFilter", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"),
			newTask("inst-1", ordotype.TaskStep, "step", t0),
			newTask("inst-1", ordotype.TaskEffect, "effect", t0),
			newTask("inst-1", ordotype.TaskTimer, "timer", t0),
		)
		require.Equal(t, []string{"effect"}, queues(claim(ctx, t, s, "worker", t0, []ordotype.TaskKind{ordotype.TaskEffect})))
		got := queues(claim(ctx, t, s, "worker", t0, []ordotype.TaskKind{ordotype.TaskStep, ordotype.TaskTimer}))
		require.ElementsMatch(t, []string{"step", "timer"}, got)
	})

	t.Run("QueueFilter", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"),
			newTask("inst-1", ordotype.TaskStep, "a", t0),
			newTask("inst-1", ordotype.TaskStep, "b", at(time.Millisecond)),
			newTask("inst-1", ordotype.TaskStep, "c", at(2*time.Millisecond)),
			newTask("inst-1", ordotype.TaskEffect, "a", at(3*time.Millisecond)),
		)
		now := at(time.Second)
		// The limit applies to all the queues together.
		one, err := s.ClaimTasks(ctx, &ordostore.ClaimTasksParams{
			Owner: "worker", Kinds: step, Queues: []string{"c", "a"}, Now: now, LeaseUntil: at(time.Minute), Limit: 1,
		})
		require.NoError(t, err)
		require.Equal(t, []string{"a"}, queues(one))
		require.Equal(t, []string{"c"}, queues(claim(ctx, t, s, "worker", now, step, "a", "c", "zzz")))
		require.Equal(t, []string{"a"}, queues(claim(ctx, t, s, "worker", now, []ordotype.TaskKind{ordotype.TaskEffect}, "a", "b")))
		require.Equal(t, []string{"b"}, queues(claim(ctx, t, s, "worker", now, allKinds)))
	})

	t.Run("ManyQueues", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		var (
			tasks []*ordostore.Task
			names []string
		)
		for i := range 40 {
			name := fmt.Sprintf("q%02d", i)
			names = append(names, name)
			// Due in reverse queue order, so the claim order is not the
			// queue order.
			tasks = append(tasks, newTask("inst-1", ordotype.TaskStep, name, at(time.Duration(40-i)*time.Millisecond)))
		}
		tasks = append(tasks,
			newTask("inst-1", ordotype.TaskStep, "other", t0),
			newTask("inst-1", ordotype.TaskEffect, "q00", t0),
		)
		create(ctx, t, s, newInstance("inst-1", "order"), tasks...)

		due, ok := nextDue(t, s, step, names...)
		require.True(t, ok)
		require.True(t, at(time.Millisecond).Equal(due), "next due %s", due)

		got, err := s.ClaimTasks(ctx, &ordostore.ClaimTasksParams{
			Owner:      "worker",
			Kinds:      step,
			Queues:     names,
			Now:        at(time.Second),
			LeaseUntil: at(time.Minute),
			Limit:      3,
		})
		require.NoError(t, err)
		require.Equal(t, []string{"q39", "q38", "q37"}, queues(got))

		got = claim(ctx, t, s, "worker", at(time.Second), []ordotype.TaskKind{ordotype.TaskStep, ordotype.TaskEffect}, names[:10]...)
		// The effect task of q00 is due first; then the step tasks of q09 to q00.
		require.Equal(t, []string{"q00", "q09", "q08", "q07", "q06", "q05", "q04", "q03", "q02", "q01", "q00"}, queues(got))
		require.Equal(t, ordotype.TaskEffect, got[0].Kind)
		require.Len(t, claim(ctx, t, s, "worker", at(time.Second), step, names...), 27)
	})

	t.Run("Limit", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		var tasks []*ordostore.Task
		for i := range 5 {
			tasks = append(tasks, newTask("inst-1", ordotype.TaskStep, fmt.Sprint(i), at(time.Duration(i)*time.Millisecond)))
		}
		create(ctx, t, s, newInstance("inst-1", "order"), tasks...)

		claimN := func(limit int) []string {
			t.Helper()
			got, err := s.ClaimTasks(ctx, &ordostore.ClaimTasksParams{
				Owner:      "worker",
				Kinds:      step,
				Now:        at(time.Second),
				LeaseUntil: at(time.Minute),
				Limit:      limit,
			})
			require.NoError(t, err)
			return queues(got)
		}
		require.Equal(t, []string{"0", "1"}, claimN(2))
		require.Equal(t, []string{"2", "3"}, claimN(2))
		require.Equal(t, []string{"4"}, claimN(2))
		require.Empty(t, claimN(2))
	})

	t.Run("LeaseAndClaimCounter", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		ids := create(ctx, t, s, newInstance("inst-1", "order"), newTask("inst-1", ordotype.TaskStep, "q", t0))

		first := claim(ctx, t, s, "worker-1", t0, step)
		require.Len(t, first, 1)
		require.Equal(t, ids[0], first[0].ID)
		require.Equal(t, 1, first[0].Claim)
		require.Equal(t, "worker-1", first[0].LeaseOwner)
		require.True(t, at(time.Minute).Equal(first[0].LeaseUntil), "lease until %s", first[0].LeaseUntil)

		// Leased: not claimed again before its lease ends, nor at its end.
		require.Empty(t, claim(ctx, t, s, "worker-2", at(30*time.Second), step))
		require.Empty(t, claim(ctx, t, s, "worker-2", at(time.Minute), step))

		// Expired: claimed again, with the next claim counter.
		second := claim(ctx, t, s, "worker-2", at(time.Minute+time.Microsecond), step)
		require.Len(t, second, 1)
		require.Equal(t, ids[0], second[0].ID)
		require.Equal(t, 2, second[0].Claim)
		require.Equal(t, "worker-2", second[0].LeaseOwner)
	})

	t.Run("PreLeasedTask", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		task := newTask("inst-1", ordotype.TaskStep, "q", t0)
		task.LeaseOwner, task.LeaseUntil, task.Claim = "engine-1", at(time.Minute), 1
		create(ctx, t, s, newInstance("inst-1", "order"), task)

		require.Empty(t, claim(ctx, t, s, "worker", t0, step))
		require.Empty(t, claim(ctx, t, s, "worker", at(time.Minute), step))
		_, ok := nextDue(t, s, step)
		require.False(t, ok)
		require.Equal(t, 1, countTasks(ctx, t, s, "inst-1"))

		got := claim(ctx, t, s, "worker", at(time.Minute+time.Microsecond), step)
		require.Len(t, got, 1)
		require.Equal(t, 2, got[0].Claim)
		require.Equal(t, "worker", got[0].LeaseOwner)
	})

	t.Run("NextTaskDue", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		_, ok := nextDue(t, s, allKinds)
		require.False(t, ok)

		create(ctx, t, s, newInstance("inst-1", "order"),
			newTask("inst-1", ordotype.TaskStep, "a", at(5*time.Second)),
			newTask("inst-1", ordotype.TaskStep, "b", at(3*time.Second)),
			newTask("inst-1", ordotype.TaskEffect, "a", at(time.Second)),
			newTask("inst-1", ordotype.TaskTimer, "", at(10*time.Hour)),
		)
		requireDue := func(want time.Time, kinds []ordotype.TaskKind, queues ...string) {
			t.Helper()
			due, ok := nextDue(t, s, kinds, queues...)
			require.True(t, ok)
			require.True(t, want.Equal(due), "next due %s, want %s", due, want)
		}
		requireDue(at(time.Second), allKinds)
		requireDue(at(3*time.Second), step)
		requireDue(at(5*time.Second), step, "a")
		requireDue(at(10*time.Hour), []ordotype.TaskKind{ordotype.TaskTimer})
		_, ok = nextDue(t, s, step, "nope")
		require.False(t, ok)

		// Leased tasks are not waited for.
		require.Len(t, claim(ctx, t, s, "worker", at(3*time.Second), allKinds), 2)
		requireDue(at(5*time.Second), allKinds)
		requireDue(at(5*time.Second), step, "a", "b")
		_, ok = nextDue(t, s, step, "b")
		require.False(t, ok)
		_, ok = nextDue(t, s, []ordotype.TaskKind{ordotype.TaskEffect})
		require.False(t, ok)
	})

	t.Run("ReleaseLeases", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"),
			newTask("inst-1", ordotype.TaskStep, "a", t0),
			newTask("inst-1", ordotype.TaskStep, "b", at(time.Millisecond)),
			newTask("inst-1", ordotype.TaskStep, "c", at(2*time.Millisecond)),
		)
		now := at(time.Second)
		one, err := s.ClaimTasks(ctx, &ordostore.ClaimTasksParams{
			Owner: "worker-1", Kinds: step, Now: now, LeaseUntil: at(time.Hour), Limit: 2,
		})
		require.NoError(t, err)
		require.Len(t, one, 2)
		require.Len(t, claim(ctx, t, s, "worker-2", now, step), 1)

		n, err := s.ReleaseLeases(ctx, "worker-1")
		require.NoError(t, err)
		require.Equal(t, 2, n)
		due, ok := nextDue(t, s, step)
		require.True(t, ok)
		require.True(t, t0.Equal(due))

		again := claim(ctx, t, s, "worker-3", now, step)
		require.Equal(t, []string{"a", "b"}, queues(again))
		require.Equal(t, []int{2, 2}, []int{again[0].Claim, again[1].Claim})

		n, err = s.ReleaseLeases(ctx, "")
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.Len(t, claim(ctx, t, s, "worker-4", now, step), 3)

		n, err = s.ReleaseLeases(ctx, "nobody")
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("ExtendLeases", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"),
			newTask("inst-1", ordotype.TaskStep, "a", t0),
			newTask("inst-1", ordotype.TaskStep, "b", t0),
		)
		now := at(time.Second)
		held := claim(ctx, t, s, "worker-1", now, step) // leased until now+1m
		require.Len(t, held, 2)
		ids := []int64{held[0].ID, held[1].ID}

		n, err := s.ExtendLeases(ctx, &ordostore.ExtendLeasesParams{Owner: "worker-2", IDs: ids, Until: at(time.Hour)})
		require.NoError(t, err)
		require.Zero(t, n, "only the owner extends its leases")
		n, err = s.ExtendLeases(ctx, &ordostore.ExtendLeasesParams{Owner: "worker-1", IDs: ids[:1], Until: at(time.Hour)})
		require.NoError(t, err)
		require.Equal(t, 1, n)

		// After the first lease would have ended, only the task that was not
		// extended can be claimed again.
		later := claim(ctx, t, s, "worker-2", at(2*time.Minute), step)
		require.Len(t, later, 1)
		require.Equal(t, held[1].ID, later[0].ID)

		n, err = s.ExtendLeases(ctx, &ordostore.ExtendLeasesParams{Owner: "worker-1", IDs: []int64{held[1].ID, 999999}, Until: at(time.Hour)})
		require.NoError(t, err)
		require.Zero(t, n, "a lease lost to another owner, or a task that is gone, is not extended")
		n, err = s.ExtendLeases(ctx, &ordostore.ExtendLeasesParams{Owner: "worker-1", Until: at(time.Hour)})
		require.NoError(t, err)
		require.Zero(t, n)
	})

	t.Run("CountTasks", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		count := func(id string, kinds ...ordotype.TaskKind) int {
			t.Helper()
			n, err := s.CountTasks(ctx, &ordostore.CountTasksParams{InstanceID: id, Kinds: kinds})
			require.NoError(t, err)
			return n
		}
		require.Zero(t, count(""))

		create(ctx, t, s, newInstance("inst-1", "order"),
			newTask("inst-1", ordotype.TaskStep, "a", t0),
			newTask("inst-1", ordotype.TaskStep, "b", t0),
			newTask("inst-1", ordotype.TaskTimer, "", at(time.Hour)),
		)
		create(ctx, t, s, newInstance("inst-2", "order"), newTask("inst-2", ordotype.TaskEffect, "a", t0))

		require.Equal(t, 4, count(""))
		require.Equal(t, 3, count("inst-1"))
		require.Equal(t, 1, count("inst-2"))
		require.Zero(t, count("nope"))
		require.Equal(t, 2, count("", ordotype.TaskStep))
		require.Equal(t, 3, count("", ordotype.TaskStep, ordotype.TaskEffect))
		require.Equal(t, 1, count("inst-1", ordotype.TaskTimer))
		require.Zero(t, count("inst-2", ordotype.TaskTimer))

		// Leased tasks count.
		require.Len(t, claim(ctx, t, s, "worker", t0, allKinds), 3)
		require.Equal(t, 4, count(""))
	})

	t.Run("KindsAreRequired", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		_, err := s.ClaimTasks(ctx, &ordostore.ClaimTasksParams{Owner: "worker", Now: t0, LeaseUntil: at(time.Minute), Limit: 1})
		require.ErrorIs(t, err, ordotype.ErrInvalid)
		_, _, err = s.NextTaskDue(ctx, &ordostore.NextTaskDueParams{})
		require.ErrorIs(t, err, ordotype.ErrInvalid)
	})
}
