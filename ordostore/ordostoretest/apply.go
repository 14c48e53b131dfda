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

func exerciseApply(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	t.Run("CreateReadsBackEveryField", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		inst := &ordostore.Instance{
			ID:             "inst-1",
			Workflow:       "order",
			Version:        3,
			Status:         ordotype.StatusWaiting,
			IdempotencyKey: "order-42",
			BusinessKey:    "customer-7",
			ParentID:       "inst-0",
			Seq:            2,
			State:          []byte(`{"paid":true}`),
			CreatedAt:      t0,
			UpdatedAt:      at(time.Second),
			FinishedAt:     at(2 * time.Second),
		}
		step := newTask("inst-1", ordotype.TaskStep, "payment", at(time.Minute))
		timer := newTask("inst-1", ordotype.TaskTimer, "", at(time.Hour))
		tr := createOf(inst, step, timer)
		res := applyOK(ctx, t, s, tr)
		require.Empty(t, res[0].ExistingID)
		require.Len(t, res[0].TaskIDs, 2)
		require.NotEqual(t, res[0].TaskIDs[0], res[0].TaskIDs[1])

		requireInstance(t, inst, getInstance(ctx, t, s, "inst-1"))
		byKey, err := s.GetInstanceByKey(ctx, "order", "order-42")
		require.NoError(t, err)
		requireInstance(t, inst, byKey)
		requireEvents(t, tr.Events, listEvents(ctx, t, s, "inst-1"))

		tasks := claim(ctx, t, s, "worker", at(2*time.Hour), allKinds)
		require.Len(t, tasks, 2)
		requireTask(t, step, tasks[0])
		requireTask(t, timer, tasks[1])
		require.Equal(t, res[0].TaskIDs, taskIDs(tasks))
	})

	t.Run("CreateWithoutOptionalFields", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		inst := newInstance("inst-1", "order")
		create(ctx, t, s, inst)
		got := getInstance(ctx, t, s, "inst-1")
		requireInstance(t, inst, got)
		require.True(t, got.FinishedAt.IsZero())

		_, err := s.GetInstanceByKey(ctx, "order", "")
		require.ErrorIs(t, err, ordotype.ErrNotFound)
	})

	t.Run("GetNotFound", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		_, err := s.GetInstance(ctx, "nope")
		require.ErrorIs(t, err, ordotype.ErrNotFound)
		_, err = s.GetInstanceByKey(ctx, "order", "nope")
		require.ErrorIs(t, err, ordotype.ErrNotFound)
	})

	t.Run("DuplicateIdempotencyKey", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		first := newInstance("inst-1", "order")
		first.IdempotencyKey = "order-42"
		create(ctx, t, s, first)

		second := newInstance("inst-2", "order")
		second.IdempotencyKey = "order-42"
		res := apply(ctx, t, s, createOf(second, newTask("inst-2", ordotype.TaskStep, "q", t0)))
		require.ErrorIs(t, res[0].Err, ordotype.ErrAlreadyExists)
		require.Equal(t, "inst-1", res[0].ExistingID)
		require.Empty(t, res[0].TaskIDs)

		// Nothing of the second instance was written.
		_, err := s.GetInstance(ctx, "inst-2")
		require.ErrorIs(t, err, ordotype.ErrNotFound)
		require.Empty(t, listEvents(ctx, t, s, "inst-2"))
		require.Zero(t, countTasks(ctx, t, s, ""))

		// The same key in another workflow is another instance.
		other := newInstance("inst-3", "refund")
		other.IdempotencyKey = "order-42"
		create(ctx, t, s, other)
		got, err := s.GetInstanceByKey(ctx, "refund", "order-42")
		require.NoError(t, err)
		require.Equal(t, "inst-3", got.ID)
		got, err = s.GetInstanceByKey(ctx, "order", "order-42")
		require.NoError(t, err)
		require.Equal(t, "inst-1", got.ID)
	})

	t.Run("DuplicateIdempotencyKeyInOneBatch", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		first, second := newInstance("inst-1", "order"), newInstance("inst-2", "order")
		first.IdempotencyKey, second.IdempotencyKey = "order-42", "order-42"
		res := apply(ctx, t, s, createOf(first), createOf(second))
		require.NoError(t, res[0].Err)
		require.ErrorIs(t, res[1].Err, ordotype.ErrAlreadyExists)
		require.Equal(t, "inst-1", res[1].ExistingID)
	})

	t.Run("DuplicateID", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"))
		again := newInstance("inst-1", "refund")
		res := apply(ctx, t, s, createOf(again))
		require.ErrorIs(t, res[0].Err, ordotype.ErrAlreadyExists)
		require.Equal(t, "inst-1", res[0].ExistingID)
		require.Equal(t, "order", getInstance(ctx, t, s, "inst-1").Workflow)
	})

	t.Run("Advance", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"))
		tr := advanceOf("inst-1", 1, 2, `{"step":2}`)
		tr.Update.Status = ordotype.StatusCompleted
		tr.Update.BusinessKey = "customer-7"
		tr.Update.FinishedAt = at(time.Hour)
		applyOK(ctx, t, s, tr)

		want := newInstance("inst-1", "order")
		want.Status = ordotype.StatusCompleted
		want.BusinessKey = "customer-7"
		want.Seq = 3
		want.State = []byte(`{"step":2}`)
		want.UpdatedAt = tr.Update.UpdatedAt
		want.FinishedAt = at(time.Hour)
		requireInstance(t, want, getInstance(ctx, t, s, "inst-1"))
		require.Equal(t, []int64{1, 2, 3}, seqs(listEvents(ctx, t, s, "inst-1")))

		// The update is the whole read model: an empty business key clears it.
		tr = advanceOf("inst-1", 3, 1, `{"step":3}`)
		applyOK(ctx, t, s, tr)
		got := getInstance(ctx, t, s, "inst-1")
		require.Empty(t, got.BusinessKey)
		require.True(t, got.FinishedAt.IsZero())
		require.Equal(t, ordotype.StatusRunning, got.Status)
		require.Equal(t, int64(4), got.Seq)
	})

	t.Run("AdvanceWithoutUpdate", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"))
		tr := advanceOf("inst-1", 1, 2, "")
		tr.Update = nil
		applyOK(ctx, t, s, tr)

		// The events still move the instance's seq.
		got := getInstance(ctx, t, s, "inst-1")
		require.Equal(t, int64(3), got.Seq)
		require.Equal(t, `{"step":0}`, string(got.State))
		res := apply(ctx, t, s, advanceOf("inst-1", 1, 1, `{}`))
		require.ErrorIs(t, res[0].Err, ordotype.ErrConflict)
		applyOK(ctx, t, s, advanceOf("inst-1", 3, 1, `{}`))
	})

	t.Run("StaleSeqConflicts", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		ids := create(ctx, t, s, newInstance("inst-1", "order"), newTask("inst-1", ordotype.TaskStep, "q", t0))
		tasks := claim(ctx, t, s, "worker", t0, allKinds)
		require.Len(t, tasks, 1)
		applyOK(ctx, t, s, advanceOf("inst-1", 1, 1, `{"step":1}`))
		before := getInstance(ctx, t, s, "inst-1")

		stale := advanceOf("inst-1", 1, 1, `{"step":"stale"}`)
		stale.Complete = &ordostore.TaskRef{ID: ids[0], Claim: tasks[0].Claim}
		stale.Tasks = []*ordostore.Task{newTask("inst-1", ordotype.TaskStep, "q", t0)}
		res := apply(ctx, t, s, stale)
		require.ErrorIs(t, res[0].Err, ordotype.ErrConflict)
		require.Empty(t, res[0].TaskIDs)

		// Nothing was written: instance, journal and tasks are unchanged.
		requireInstance(t, before, getInstance(ctx, t, s, "inst-1"))
		require.Equal(t, []int64{1, 2}, seqs(listEvents(ctx, t, s, "inst-1")))
		require.Equal(t, 1, countTasks(ctx, t, s, "inst-1"))

		// A seq ahead of the instance conflicts too.
		res = apply(ctx, t, s, advanceOf("inst-1", 5, 1, `{}`))
		require.ErrorIs(t, res[0].Err, ordotype.ErrConflict)
	})

	t.Run("UnknownInstance", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		tr := advanceOf("nope", 1, 1, `{}`)
		tr.Tasks = []*ordostore.Task{newTask("nope", ordotype.TaskStep, "q", t0)}
		res := apply(ctx, t, s, tr)
		require.ErrorIs(t, res[0].Err, ordotype.ErrNotFound)
		require.Empty(t, listEvents(ctx, t, s, "nope"))
		require.Zero(t, countTasks(ctx, t, s, ""))
	})

	t.Run("Complete", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"), newTask("inst-1", ordotype.TaskStep, "q", t0))
		tasks := claim(ctx, t, s, "worker", t0, allKinds)
		require.Len(t, tasks, 1)

		tr := advanceOf("inst-1", 1, 1, `{}`)
		tr.Complete = &ordostore.TaskRef{ID: tasks[0].ID, Claim: tasks[0].Claim}
		applyOK(ctx, t, s, tr)
		require.Zero(t, countTasks(ctx, t, s, "inst-1"))

		// The same completion again is a duplicate.
		tr = advanceOf("inst-1", 2, 1, `{}`)
		tr.Complete = &ordostore.TaskRef{ID: tasks[0].ID, Claim: tasks[0].Claim}
		res := apply(ctx, t, s, tr)
		require.ErrorIs(t, res[0].Err, ordotype.ErrDuplicate)
		require.Equal(t, int64(2), getInstance(ctx, t, s, "inst-1").Seq)
	})

	t.Run("Cancel", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		match := newTask("inst-1", ordotype.TaskStep, "watch", at(time.Hour))
		again := newTask("inst-1", ordotype.TaskStep, "watch", at(2*time.Hour)) // a second delivery's
		other := newTask("inst-1", ordotype.TaskStep, "watch", at(time.Hour))
		other.Attempt = 2
		done := newTask("inst-1", ordotype.TaskStep, "q", t0)
		create(ctx, t, s, newInstance("inst-1", "order"), match, again, other, done)
		create(ctx, t, s, newInstance("inst-2", "order"), newTask("inst-2", ordotype.TaskStep, "watch", at(time.Hour)))
		tasks := claim(ctx, t, s, "worker", t0, allKinds)
		require.Len(t, tasks, 1)

		// The cancelled tasks go, the completed one is checked first, and
		// a task the transition inserts that matches is kept.
		tr := advanceOf("inst-1", 1, 1, `{}`)
		tr.Complete = &ordostore.TaskRef{ID: tasks[0].ID, Claim: tasks[0].Claim}
		tr.Cancel = []ordostore.TaskMatch{{Queue: "watch", StepID: "step-watch", Attempt: 1}, {Queue: "nothing", StepID: "x", Attempt: 1}}
		kept := newTask("inst-1", ordotype.TaskStep, "watch", at(3*time.Hour))
		tr.Tasks = []*ordostore.Task{kept}
		applyOK(ctx, t, s, tr)
		left, err := s.ListTasks(ctx, &ordostore.ListTasksParams{Kinds: allKinds})
		require.NoError(t, err)
		var got []string
		for _, tk := range left {
			got = append(got, fmt.Sprintf("%s/%d/%s", tk.InstanceID, tk.Attempt, utc(tk.DueAt).Sub(t0)))
		}
		require.ElementsMatch(t, []string{"inst-1/2/1h0m0s", "inst-1/1/3h0m0s", "inst-2/1/1h0m0s"}, got)

		// A transition that fails cancels nothing.
		tr = advanceOf("inst-1", 1, 1, `{}`) // stale seq
		tr.Cancel = []ordostore.TaskMatch{{Queue: "watch", StepID: "step-watch", Attempt: 2}}
		res := apply(ctx, t, s, tr)
		require.ErrorIs(t, res[0].Err, ordotype.ErrConflict)
		require.Equal(t, 3, countTasks(ctx, t, s, ""))
	})

	t.Run("CompleteMissingTaskIsDuplicate", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"))
		before := getInstance(ctx, t, s, "inst-1")

		tr := advanceOf("inst-1", 1, 1, `{"step":1}`)
		tr.Complete = &ordostore.TaskRef{ID: 424242, Claim: 1}
		tr.Tasks = []*ordostore.Task{newTask("inst-1", ordotype.TaskStep, "q", t0)}
		res := apply(ctx, t, s, tr)
		require.ErrorIs(t, res[0].Err, ordotype.ErrDuplicate)
		require.Empty(t, res[0].TaskIDs)

		requireInstance(t, before, getInstance(ctx, t, s, "inst-1"))
		require.Equal(t, []int64{1}, seqs(listEvents(ctx, t, s, "inst-1")))
		require.Zero(t, countTasks(ctx, t, s, ""))
	})

	t.Run("CompleteWrongClaimIsDuplicate", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"), newTask("inst-1", ordotype.TaskStep, "q", t0))
		first := claim(ctx, t, s, "worker-1", t0, allKinds)
		require.Len(t, first, 1)
		// The lease ends and another worker claims the task again.
		second := claim(ctx, t, s, "worker-2", at(2*time.Minute), allKinds)
		require.Len(t, second, 1)
		require.Equal(t, first[0].ID, second[0].ID)

		// The first worker's completion presents an outdated claim.
		tr := advanceOf("inst-1", 1, 1, `{"by":"worker-1"}`)
		tr.Complete = &ordostore.TaskRef{ID: first[0].ID, Claim: first[0].Claim}
		res := apply(ctx, t, s, tr)
		require.ErrorIs(t, res[0].Err, ordotype.ErrDuplicate)
		require.Equal(t, int64(1), getInstance(ctx, t, s, "inst-1").Seq)
		require.Equal(t, 1, countTasks(ctx, t, s, "inst-1"))

		tr = advanceOf("inst-1", 1, 1, `{"by":"worker-2"}`)
		tr.Complete = &ordostore.TaskRef{ID: second[0].ID, Claim: second[0].Claim}
		applyOK(ctx, t, s, tr)
		require.Zero(t, countTasks(ctx, t, s, "inst-1"))
	})

	t.Run("FailedTransitionDoesNotFailBatch", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-2", "order"))
		res := apply(ctx, t, s,
			createOf(newInstance("inst-1", "order"), newTask("inst-1", ordotype.TaskStep, "q", t0)),
			advanceOf("inst-2", 7, 1, `{"stale":true}`),
			createOf(newInstance("inst-3", "order"), newTask("inst-3", ordotype.TaskStep, "q", t0)),
		)
		require.NoError(t, res[0].Err)
		require.ErrorIs(t, res[1].Err, ordotype.ErrConflict)
		require.NoError(t, res[2].Err)
		require.Len(t, res[0].TaskIDs, 1)
		require.Len(t, res[2].TaskIDs, 1)

		getInstance(ctx, t, s, "inst-1")
		getInstance(ctx, t, s, "inst-3")
		require.Equal(t, int64(1), getInstance(ctx, t, s, "inst-2").Seq)
		require.Equal(t, 2, countTasks(ctx, t, s, ""))
	})

	t.Run("SameInstanceTwiceInOneBatch", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"))
		first := advanceOf("inst-1", 1, 1, `{"by":"first"}`)
		second := advanceOf("inst-1", 1, 1, `{"by":"second"}`)
		second.Events[0].Type = "Second"
		second.Tasks = []*ordostore.Task{newTask("inst-1", ordotype.TaskStep, "q", t0)}
		res := apply(ctx, t, s, first, second)
		require.NoError(t, res[0].Err)
		require.ErrorIs(t, res[1].Err, ordotype.ErrConflict)

		got := getInstance(ctx, t, s, "inst-1")
		require.Equal(t, int64(2), got.Seq)
		require.Equal(t, `{"by":"first"}`, string(got.State))
		events := listEvents(ctx, t, s, "inst-1")
		require.Equal(t, []int64{1, 2}, seqs(events))
		require.Equal(t, "StepCompleted", events[1].Type)
		require.Zero(t, countTasks(ctx, t, s, ""))

		// A second transition that follows on from the first applies.
		res = apply(ctx, t, s, advanceOf("inst-1", 2, 1, `{}`), advanceOf("inst-1", 3, 2, `{}`))
		require.NoError(t, res[0].Err)
		require.NoError(t, res[1].Err)
		require.Equal(t, int64(5), getInstance(ctx, t, s, "inst-1").Seq)
	})

	t.Run("TaskIDs", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"))
		a := advanceOf("inst-1", 1, 1, `{}`)
		a.Tasks = []*ordostore.Task{
			newTask("inst-1", ordotype.TaskStep, "a1", t0),
			newTask("inst-1", ordotype.TaskStep, "a2", t0),
		}
		b := createOf(newInstance("inst-2", "order"),
			newTask("inst-2", ordotype.TaskStep, "b1", t0),
			newTask("inst-2", ordotype.TaskStep, "b2", t0),
			newTask("inst-2", ordotype.TaskStep, "b3", t0),
		)
		res := applyOK(ctx, t, s, a, b)
		require.Len(t, res[0].TaskIDs, 2)
		require.Len(t, res[1].TaskIDs, 3)

		byID := map[int64]*ordostore.Task{}
		for _, task := range claim(ctx, t, s, "worker", t0, allKinds) {
			byID[task.ID] = task
		}
		require.Len(t, byID, 5)
		for i, id := range res[0].TaskIDs {
			requireTask(t, a.Tasks[i], byID[id])
		}
		for i, id := range res[1].TaskIDs {
			requireTask(t, b.Tasks[i], byID[id])
		}
	})

	t.Run("InvalidSeqs", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"))
		gap := advanceOf("inst-1", 1, 2, `{}`)
		gap.Events[1].Seq = 4
		gap.Update.Seq = 4
		badUpdate := advanceOf("inst-1", 1, 1, `{}`)
		badUpdate.Update.Seq = 5
		badCreate := createOf(newInstance("inst-2", "order"))
		badCreate.Create.Seq = 2
		res := apply(ctx, t, s, gap, badUpdate, badCreate, createOf(newInstance("inst-3", "order")))
		require.ErrorIs(t, res[0].Err, ordotype.ErrInvalid)
		require.ErrorIs(t, res[1].Err, ordotype.ErrInvalid)
		require.ErrorIs(t, res[2].Err, ordotype.ErrInvalid)
		require.NoError(t, res[3].Err)

		require.Equal(t, []int64{1}, seqs(listEvents(ctx, t, s, "inst-1")))
		_, err := s.GetInstance(ctx, "inst-2")
		require.ErrorIs(t, err, ordotype.ErrNotFound)
	})

	t.Run("EmptyBatch", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		res, err := s.Apply(ctx, nil)
		require.NoError(t, err)
		require.Empty(t, res)
	})
}
