package journal

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordotype"
)

func randomState(r *rand.Rand) *State {
	strs := []string{"", "a", "order-fulfilment", `quote " and \ backslash`, "<html>&", "tab\there", "é ünïcödé", "nul\x00", "\xff invalid utf8"}
	pick := func() string { return strs[r.IntN(len(strs))] }
	raws := []json.RawMessage{nil, json.RawMessage(`{}`), json.RawMessage(`{"a":[1,2.5,"x"]}`), json.RawMessage(`"s"`), json.RawMessage(`null`), json.RawMessage(`42`)}
	raw := func() json.RawMessage { return raws[r.IntN(len(raws))] }
	tm := func() time.Time {
		if r.IntN(3) == 0 {
			return time.Time{}
		}
		return time.Date(2030, 1, 1, 0, 0, 0, r.IntN(1e9), time.UTC).Add(time.Duration(r.IntN(1e6)) * time.Second)
	}
	errOf := func() *Error {
		if r.IntN(2) == 0 {
			return nil
		}
		return &Error{Message: pick(), Code: pick(), Step: pick(), Retryable: r.IntN(2) == 0}
	}
	s := &State{
		ID: pick(), Workflow: pick(), Version: r.IntN(5), Status: ordotype.StatusRunning,
		IdempotencyKey: pick(), BusinessKey: pick(), ParentID: pick(), TraceParent: pick(),
		Input: raw(), Data: raw(), Output: raw(), Error: errOf(),
		PendingEffects: r.IntN(3), Seq: r.Int64N(100), CreatedAt: tm(), UpdatedAt: tm(), FinishedAt: tm(),
		ParentStep: pick(), ParentAttempt: r.IntN(3), Compensating: r.IntN(2) == 0,
	}
	if r.IntN(2) == 0 {
		s.Slots = []string{pick(), pick()}
		s.Messages = []string{pick()}
		s.Loops = map[string]int{pick(): r.IntN(4), pick() + "x": 1 + r.IntN(4)}
	}
	if r.IntN(5) > 0 {
		s.Steps = map[string]*StepState{}
		for i := range r.IntN(6) {
			s.Steps[fmt.Sprintf("%s-%d", pick(), i)] = &StepState{
				Status: ordotype.StepCompleted, Attempt: r.IntN(4), FirstAttempt: r.IntN(2), Input: raw(), Output: raw(),
				Error: errOf(), Reason: pick(), PendingEffects: r.IntN(2), FailedEffects: r.IntN(2),
				DueAt: tm(), StartedAt: tm(), FinishedAt: tm(),
				Child: pick(), Key: pick(), MessageID: pick(), CompletedSeq: r.Int64N(9),
			}
		}
	}
	return s
}

// TestState_AppendJSON checks the hand-written encoder against encoding/json
// on random states.
func TestState_AppendJSON(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 2000 {
		s := randomState(r)
		want, err := json.Marshal(s)
		require.NoError(t, err)
		got := s.AppendJSON(nil)
		require.True(t, json.Valid(got), "state %d: invalid JSON %s", i, got)
		require.JSONEq(t, string(want), string(got), "state %d", i)
		var back State
		require.NoError(t, json.Unmarshal(got, &back))
	}
}

func BenchmarkState_AppendJSON(b *testing.B) {
	s := randomState(rand.New(rand.NewPCG(3, 4)))
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = s.AppendJSON(buf[:0])
	}
}

func BenchmarkState_JSONMarshal(b *testing.B) {
	s := randomState(rand.New(rand.NewPCG(3, 4)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(s); err != nil {
			b.Fatal(err)
		}
	}
}

func TestEvent_AppendData(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 2000 {
		st := randomState(r)
		e := &Event{
			Workflow: st.Workflow, Version: st.Version, IdempotencyKey: st.IdempotencyKey, BusinessKey: st.BusinessKey,
			ParentID: st.ParentID, Input: st.Input, TraceParent: st.TraceParent, StartedAt: st.CreatedAt, Output: st.Output, State: st.Data,
			Effects: st.PendingEffects, Error: st.Error, DueAt: st.FinishedAt, Reason: st.BusinessKey, Worker: st.IdempotencyKey, Claim: r.IntN(3), Task: r.Int64N(3),
			Index: r.IntN(3), EffectType: st.ParentID, EffectKey: st.ID, EffectAttempt: r.IntN(3), Retrying: r.IntN(2) == 0,
			ParentStep: st.ParentStep, ParentAttempt: st.ParentAttempt, Slots: st.Slots, Child: st.ID,
			Key: st.BusinessKey, MessageID: st.Workflow, Iteration: r.IntN(3),
		}
		if r.IntN(2) == 0 {
			e.Reset = []string{st.ID, st.Workflow}
		}
		want, err := json.Marshal(e)
		require.NoError(t, err)
		got := e.AppendData(nil)
		require.True(t, json.Valid(got), "event %d: invalid JSON %s", i, got)
		require.JSONEq(t, string(want), string(got), "event %d", i)
	}
	require.Equal(t, "{}", string((&Event{}).AppendData(nil)))
}
