package journal

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordotype"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func ev(seq int64, typ Type, step string, attempt int, mod func(*Event)) *Event {
	e := &Event{Seq: seq, Type: typ, Step: step, Attempt: attempt, Time: t0.Add(time.Duration(seq) * time.Second)}
	if mod != nil {
		mod(e)
	}
	return e
}

func TestFold(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		events []*Event
		check  func(t *testing.T, s *State)
	}{
		{
			name: "started",
			events: []*Event{ev(1, WorkflowStarted, "", 0, func(e *Event) {
				e.Workflow, e.Version, e.Input, e.IdempotencyKey = "w", 2, json.RawMessage(`{"a":1}`), "k"
			})},
			check: func(t *testing.T, s *State) {
				require.Equal(t, ordotype.StatusRunning, s.Status)
				require.Equal(t, "w", s.Workflow)
				require.Equal(t, 2, s.Version)
				require.Equal(t, "k", s.IdempotencyKey)
				require.Equal(t, t0.Add(time.Second), s.CreatedAt)
			},
		},
		{
			name: "retry then complete with state and effects",
			events: []*Event{
				ev(1, WorkflowStarted, "", 0, nil),
				ev(2, StepScheduled, "a", 1, func(e *Event) { e.Input = json.RawMessage(`1`) }),
				ev(3, StepStarted, "a", 1, nil),
				ev(4, StepFailed, "a", 1, func(e *Event) { e.Error = &Error{Message: "x", Retryable: true} }),
				ev(5, StepRetrying, "a", 2, func(e *Event) { e.DueAt = t0.Add(time.Minute); e.Input = json.RawMessage(`1`) }),
				ev(6, StepStarted, "a", 2, nil),
				ev(7, StepCompleted, "a", 2, func(e *Event) {
					e.Output, e.State, e.Effects = json.RawMessage(`"out"`), json.RawMessage(`{"s":1}`), 2
				}),
				ev(8, EffectCompleted, "a", 2, nil),
			},
			check: func(t *testing.T, s *State) {
				a := s.Steps["a"]
				require.Equal(t, ordotype.StepCompleted, a.Status)
				require.Equal(t, 2, a.Attempt)
				require.Equal(t, 1, a.FirstAttempt, "a retry keeps the run's first attempt")
				require.Nil(t, a.Error)
				require.JSONEq(t, `"out"`, string(a.Output))
				require.JSONEq(t, `{"s":1}`, string(s.Data))
				require.Equal(t, 1, a.PendingEffects)
				require.Equal(t, 1, s.PendingEffects)
				require.Equal(t, int64(8), s.Seq)
			},
		},
		{
			name: "parked then resubmitted",
			events: []*Event{
				ev(1, WorkflowStarted, "", 0, nil),
				ev(2, StepScheduled, "a", 1, nil),
				ev(3, StepFailed, "a", 1, func(e *Event) { e.Error = &Error{Message: "x"} }),
				ev(4, WorkflowParked, "", 0, func(e *Event) { e.Error = &Error{Message: "x", Step: "a"} }),
				ev(5, WorkflowResubmitted, "", 0, func(e *Event) { e.Reset = []string{"a"} }),
			},
			check: func(t *testing.T, s *State) {
				require.Equal(t, ordotype.StatusRunning, s.Status)
				require.Nil(t, s.Error)
				require.Equal(t, ordotype.StepPending, s.Steps["a"].Status)
				require.Equal(t, 1, s.Steps["a"].Attempt, "attempt numbers survive a reset")
			},
		},
		{
			name: "failed effect that is retried stays pending",
			events: []*Event{
				ev(1, WorkflowStarted, "", 0, nil),
				ev(2, StepCompleted, "a", 1, func(e *Event) { e.Effects = 1 }),
				ev(3, EffectFailed, "a", 1, func(e *Event) { e.Retrying = true }),
			},
			check: func(t *testing.T, s *State) { require.Equal(t, 1, s.PendingEffects) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Fold("i1", tc.events)
			require.NoError(t, err)
			tc.check(t, s)
		})
	}
}

func TestFold_RejectsGapsAndUnknownTypes(t *testing.T) {
	t.Parallel()
	_, err := Fold("i1", []*Event{ev(1, WorkflowStarted, "", 0, nil), ev(3, StepScheduled, "a", 1, nil)})
	require.ErrorContains(t, err, "does not follow sequence 1")
	_, err = Fold("i1", []*Event{ev(1, "nope", "", 0, nil)})
	require.ErrorContains(t, err, `unknown event type "nope"`)
}

func TestEventData_RoundTrip(t *testing.T) {
	t.Parallel()
	in := ev(7, StepCompleted, "a", 2, func(e *Event) { e.Output = json.RawMessage(`{"x":1}`); e.Effects = 1 })
	data := MarshalData(in)
	require.NotContains(t, string(data), `"seq"`, "columns are not repeated in the data")
	out := &Event{Seq: 7, Type: StepCompleted, Step: "a", Attempt: 2, Time: in.Time}
	require.NoError(t, UnmarshalData(data, out))
	require.Equal(t, in, out)
}

func BenchmarkFold_Order(b *testing.B) {
	events := []*Event{ev(1, WorkflowStarted, "", 0, func(e *Event) { e.Input = json.RawMessage(`{"orderId":"o-1"}`) })}
	seq := int64(1)
	for _, step := range []string{"payment", "reserve", "label", "ship", "notify"} {
		for _, typ := range []Type{StepScheduled, StepStarted, StepCompleted} {
			seq++
			events = append(events, ev(seq, typ, step, 1, func(e *Event) { e.Output = json.RawMessage(`{"ok":true}`) }))
		}
	}
	events = append(events, ev(seq+1, WorkflowCompleted, "", 0, nil))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Fold("i1", events); err != nil {
			b.Fatal(err)
		}
	}
}
