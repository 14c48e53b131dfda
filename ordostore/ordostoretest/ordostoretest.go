// Package ordostoretest is the conformance suite of [ordostore.Store]: the
// contract every driver must pass, run from each driver's tests with
// [Exercise].
//
// The suite asserts only what the interface promises. It uses times with
// microsecond precision, which every supported database stores exactly, and
// ASCII instance IDs, whose order is the same in every collation.
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

// Exercise runs the conformance suite. newStore must return a new, empty
// store each time it is called, and close it in t.Cleanup (closing a store
// twice is part of the contract, so the suite may close it first). Every
// subtest gets its own store and runs in parallel with the others.
func Exercise(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	t.Helper()
	areas := []struct {
		name string
		run  func(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store)
	}{
		{"Definitions", exerciseDefinitions},
		{"Apply", exerciseApply},
		{"Events", exerciseEvents},
		{"Instances", exerciseInstances},
		{"Tasks", exerciseTasks},
		{"TaskList", exerciseTaskList},
		{"Concurrency", exerciseConcurrency},
		{"Messages", exerciseMessages},
		{"Prune", exercisePrune},
		{"Close", exerciseClose},
		{"GetInstances", exerciseGetInstances},
		{"DueTasks", exerciseDueTasks},

		{"Counts", exerciseCounts},
	}
	for _, area := range areas {
		t.Run(area.name, func(t *testing.T) {
			t.Parallel()
			area.run(ctx, t, newStore)
		})
	}
}

// t0 is the suite's reference time. Times are given microsecond precision
// and a non-UTC zone: a store must keep the instant, whatever its zone.
var t0 = time.Date(2030, time.March, 14, 15, 9, 26, 535897000, time.FixedZone("CET", 3600))

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// newInstance returns an instance to create: running, with one event (so Seq
// 1) and every optional field empty.
func newInstance(id, workflow string) *ordostore.Instance {
	return &ordostore.Instance{
		ID:        id,
		Workflow:  workflow,
		Version:   1,
		Status:    ordotype.StatusRunning,
		Seq:       1,
		State:     []byte(`{"step":0}`),
		CreatedAt: t0,
		UpdatedAt: t0,
	}
}

// newEvent returns an event of instance id.
func newEvent(id string, seq int64, typ string) *ordostore.Event {
	return &ordostore.Event{
		InstanceID: id,
		Seq:        seq,
		Type:       typ,
		StepID:     fmt.Sprintf("step-%d", seq),
		Attempt:    1,
		Data:       []byte(fmt.Sprintf(`{"seq":%d}`, seq)),
		CreatedAt:  at(time.Duration(seq) * time.Millisecond),
	}
}

// newTask returns an unleased task of instance id.
func newTask(id string, kind ordotype.TaskKind, queue string, due time.Time) *ordostore.Task {
	return &ordostore.Task{
		InstanceID: id,
		Kind:       kind,
		Queue:      queue,
		StepID:     "step-" + queue,
		Attempt:    1,
		Payload:    []byte(`{"task":true}`),
		DueAt:      due,
		CreatedAt:  t0,
	}
}

// createOf returns the transition that creates inst with its first Seq
// events and the given tasks.
func createOf(inst *ordostore.Instance, tasks ...*ordostore.Task) *ordostore.Transition {
	tr := &ordostore.Transition{Create: inst, Tasks: tasks}
	for seq := int64(1); seq <= inst.Seq; seq++ {
		tr.Events = append(tr.Events, newEvent(inst.ID, seq, "Started"))
	}
	return tr
}

// advanceOf returns the transition that moves instance id from seq by n
// events, setting its state to state.
func advanceOf(id string, seq int64, n int, state string) *ordostore.Transition {
	tr := &ordostore.Transition{
		InstanceID:  id,
		ExpectedSeq: seq,
		Update: &ordostore.InstanceUpdate{
			Status:    ordotype.StatusRunning,
			Seq:       seq + int64(n),
			State:     []byte(state),
			UpdatedAt: at(time.Duration(seq+int64(n)) * time.Second),
		},
	}
	for i := range n {
		tr.Events = append(tr.Events, newEvent(id, seq+1+int64(i), "StepCompleted"))
	}
	return tr
}

// apply applies batch and requires that the batch as a whole succeeded.
func apply(ctx context.Context, t *testing.T, s ordostore.Store, batch ...*ordostore.Transition) []ordostore.TransitionResult {
	t.Helper()
	results, err := s.Apply(ctx, batch)
	require.NoError(t, err)
	require.Len(t, results, len(batch))
	return results
}

// applyOK applies batch and requires that every transition was written.
func applyOK(ctx context.Context, t *testing.T, s ordostore.Store, batch ...*ordostore.Transition) []ordostore.TransitionResult {
	t.Helper()
	results := apply(ctx, t, s, batch...)
	for i, res := range results {
		require.NoError(t, res.Err, "transition %d", i)
	}
	return results
}

// create creates an instance with the given tasks and returns their IDs.
func create(ctx context.Context, t *testing.T, s ordostore.Store, inst *ordostore.Instance, tasks ...*ordostore.Task) []int64 {
	t.Helper()
	res := applyOK(ctx, t, s, createOf(inst, tasks...))
	require.Len(t, res[0].TaskIDs, len(tasks))
	return res[0].TaskIDs
}

// claim claims up to 100 tasks of kinds (and queues, if any) at now for
// owner, leased for a minute.
func claim(ctx context.Context, t *testing.T, s ordostore.Store, owner string, now time.Time, kinds []ordotype.TaskKind, queues ...string) []*ordostore.Task {
	t.Helper()
	tasks, err := s.ClaimTasks(ctx, &ordostore.ClaimTasksParams{
		Owner:      owner,
		Kinds:      kinds,
		Queues:     queues,
		Now:        now,
		LeaseUntil: now.Add(time.Minute),
		Limit:      100,
	})
	require.NoError(t, err)
	return tasks
}

// allKinds are every task kind.
var allKinds = []ordotype.TaskKind{ordotype.TaskStep, ordotype.TaskEffect, ordotype.TaskTimer}

// countTasks returns how many tasks instance id has ("" for all).
func countTasks(ctx context.Context, t *testing.T, s ordostore.Store, id string) int {
	t.Helper()
	n, err := s.CountTasks(ctx, &ordostore.CountTasksParams{InstanceID: id})
	require.NoError(t, err)
	return n
}

// listEvents returns every event of instance id.
func listEvents(ctx context.Context, t *testing.T, s ordostore.Store, id string) []*ordostore.Event {
	t.Helper()
	events, err := s.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: id})
	require.NoError(t, err)
	return events
}

// getInstance returns instance id, which must exist.
func getInstance(ctx context.Context, t *testing.T, s ordostore.Store, id string) *ordostore.Instance {
	t.Helper()
	inst, err := s.GetInstance(ctx, id)
	require.NoError(t, err)
	return inst
}

// requireInstance requires that got is want: times are compared as instants
// and an empty State equals a nil one.
func requireInstance(t *testing.T, want, got *ordostore.Instance) {
	t.Helper()
	require.NotNil(t, got)
	norm := func(in *ordostore.Instance) ordostore.Instance {
		out := *in
		out.State = bytesOrNil(out.State)
		out.CreatedAt, out.UpdatedAt, out.FinishedAt = utc(out.CreatedAt), utc(out.UpdatedAt), utc(out.FinishedAt)
		return out
	}
	require.Equal(t, norm(want), norm(got))
}

// requireEvents requires that got are want, as requireInstance does.
func requireEvents(t *testing.T, want, got []*ordostore.Event) {
	t.Helper()
	norm := func(in []*ordostore.Event) []ordostore.Event {
		out := make([]ordostore.Event, 0, len(in))
		for _, ev := range in {
			e := *ev
			e.Data = bytesOrNil(e.Data)
			e.CreatedAt = utc(e.CreatedAt)
			out = append(out, e)
		}
		return out
	}
	require.Equal(t, norm(want), norm(got))
}

// requireTask requires that got is want apart from its ID and lease, which
// the store sets.
func requireTask(t *testing.T, want, got *ordostore.Task) {
	t.Helper()
	require.NotNil(t, got)
	norm := func(in *ordostore.Task) ordostore.Task {
		out := *in
		out.ID, out.LeaseOwner, out.LeaseUntil, out.Claim = 0, "", time.Time{}, 0
		out.Payload = bytesOrNil(out.Payload)
		out.DueAt, out.CreatedAt = utc(out.DueAt), utc(out.CreatedAt)
		return out
	}
	require.Equal(t, norm(want), norm(got))
}

// seqs returns the Seq of each event.
func seqs(events []*ordostore.Event) []int64 {
	out := make([]int64, 0, len(events))
	for _, ev := range events {
		out = append(out, ev.Seq)
	}
	return out
}

// taskIDs returns the ID of each task.
func taskIDs(tasks []*ordostore.Task) []int64 {
	out := make([]int64, 0, len(tasks))
	for _, task := range tasks {
		out = append(out, task.ID)
	}
	return out
}

// instanceIDs returns the ID of each instance.
func instanceIDs(insts []*ordostore.Instance) []string {
	out := make([]string, 0, len(insts))
	for _, inst := range insts {
		out = append(out, inst.ID)
	}
	return out
}

// utc returns t in UTC, and the zero time unchanged.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// bytesOrNil returns nil for an empty slice.
func bytesOrNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
