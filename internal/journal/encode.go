package journal

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the JSON encoding of s to b. It produces the same JSON
// value as json.Marshal(s) (the read model is written on every state change,
// and reflection-based encoding was a sixth of the engine's CPU time). Steps
// are written in sorted order, as encoding/json writes maps.
func (s *State) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, s.ID)
	b = append(b, `,"workflow":`...)
	b = appendString(b, s.Workflow)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, int64(s.Version), 10)
	b = append(b, `,"status":`...)
	b = appendString(b, string(s.Status))
	b = appendOptString(b, "idempotencyKey", s.IdempotencyKey)
	b = appendOptString(b, "businessKey", s.BusinessKey)
	b = appendOptString(b, "parentId", s.ParentID)
	b = appendOptString(b, "traceParent", s.TraceParent)
	b = appendOptRaw(b, "input", s.Input)
	b = appendOptRaw(b, "state", s.Data)
	b = appendOptRaw(b, "output", s.Output)
	b = appendOptError(b, s.Error)
	b = append(b, `,"steps":`...)
	if s.Steps == nil {
		b = append(b, "null"...)
	} else {
		ids := make([]string, 0, len(s.Steps))
		for id := range s.Steps {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		b = append(b, '{')
		for i, id := range ids {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, id)
			b = append(b, ':')
			b = s.Steps[id].appendJSON(b)
		}
		b = append(b, '}')
	}
	b = appendOptInt(b, "pendingEffects", s.PendingEffects)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, s.Seq, 10)
	b = append(b, `,"createdAt":`...)
	b = appendTime(b, s.CreatedAt)
	b = append(b, `,"updatedAt":`...)
	b = appendTime(b, s.UpdatedAt)
	if !s.FinishedAt.IsZero() {
		b = append(b, `,"finishedAt":`...)
		b = appendTime(b, s.FinishedAt)
	}
	b = appendOptString(b, "parentStep", s.ParentStep)
	b = appendOptInt(b, "parentAttempt", s.ParentAttempt)
	b = appendOptStrings(b, "slots", s.Slots)
	if s.Compensating {
		b = append(b, `,"compensating":true`...)
	}
	b = appendOptStrings(b, "messages", s.Messages)
	if len(s.Loops) > 0 {
		ids := make([]string, 0, len(s.Loops))
		for id := range s.Loops {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		b = append(b, `,"loops":{`...)
		for i, id := range ids {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, id)
			b = append(b, ':')
			b = strconv.AppendInt(b, int64(s.Loops[id]), 10)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// appendOptStrings appends a list of strings, if it is not empty.
func appendOptStrings(b []byte, key string, v []string) []byte {
	if len(v) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, `":[`...)
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

func (st *StepState) appendJSON(b []byte) []byte {
	b = append(b, `{"status":`...)
	b = appendString(b, string(st.Status))
	b = appendOptInt(b, "attempt", st.Attempt)
	b = appendOptInt(b, "firstAttempt", st.FirstAttempt)
	b = appendOptRaw(b, "input", st.Input)
	b = appendOptRaw(b, "output", st.Output)
	b = appendOptError(b, st.Error)
	b = appendOptString(b, "reason", st.Reason)
	b = appendOptInt(b, "pendingEffects", st.PendingEffects)
	b = appendOptInt(b, "failedEffects", st.FailedEffects)
	b = appendOptTime(b, "dueAt", st.DueAt)
	b = appendOptTime(b, "startedAt", st.StartedAt)
	b = appendOptTime(b, "finishedAt", st.FinishedAt)
	b = appendOptString(b, "child", st.Child)
	b = appendOptString(b, "key", st.Key)
	b = appendOptString(b, "messageId", st.MessageID)
	if st.CompletedSeq != 0 {
		b = append(b, `,"completedSeq":`...)
		b = strconv.AppendInt(b, st.CompletedSeq, 10)
	}
	return append(b, '}')
}

func appendOptError(b []byte, e *Error) []byte {
	if e == nil {
		return b
	}
	b = append(b, `,"error":{"message":`...)
	b = appendString(b, e.Message)
	b = appendOptString(b, "code", e.Code)
	b = appendOptString(b, "step", e.Step)
	if e.Retryable {
		b = append(b, `,"retryable":true`...)
	}
	return append(b, '}')
}

func appendOptString(b []byte, key, v string) []byte {
	if v == "" {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

func appendOptInt(b []byte, key string, v int) []byte {
	if v == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return strconv.AppendInt(b, int64(v), 10)
}

// appendOptRaw appends a raw JSON value, which the engine keeps compacted
// and valid (inputs are compacted by the trigger, outputs and states are
// produced by json.Marshal or checked with json.Valid).
func appendOptRaw(b []byte, key string, v json.RawMessage) []byte {
	if len(v) == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return append(b, v...)
}

func appendOptTime(b []byte, key string, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return appendTime(b, t)
}

func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendString appends s as a JSON string, escaping as encoding/json does
// (including <, > and & for HTML safety); anything unusual goes through
// json.Marshal itself.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// AppendData appends the JSON of e's type-specific fields (what
// [MarshalData] returns) to b; it produces the same JSON value as
// json.Marshal(e).
func (e *Event) AppendData(b []byte) []byte {
	start := len(b)
	b = append(b, '{')
	b = appendOptString(b, "workflow", e.Workflow)
	b = appendOptInt(b, "version", e.Version)
	b = appendOptString(b, "idempotencyKey", e.IdempotencyKey)
	b = appendOptString(b, "businessKey", e.BusinessKey)
	b = appendOptString(b, "parentId", e.ParentID)
	b = appendOptRaw(b, "input", e.Input)
	b = appendOptString(b, "traceParent", e.TraceParent)
	b = appendOptTime(b, "startedAt", e.StartedAt)
	b = appendOptRaw(b, "output", e.Output)
	b = appendOptRaw(b, "state", e.State)
	b = appendOptInt(b, "effects", e.Effects)
	b = appendOptError(b, e.Error)
	b = appendOptTime(b, "dueAt", e.DueAt)
	if e.Waiting {
		b = append(b, `,"waiting":true`...)
	}
	b = appendOptString(b, "reason", e.Reason)
	b = appendOptString(b, "worker", e.Worker)
	b = appendOptInt(b, "claim", e.Claim)
	if e.Task != 0 {
		b = append(b, `,"task":`...)
		b = strconv.AppendInt(b, e.Task, 10)
	}
	b = appendOptInt(b, "index", e.Index)
	b = appendOptString(b, "effectType", e.EffectType)
	b = appendOptString(b, "effectKey", e.EffectKey)
	b = appendOptInt(b, "effectAttempt", e.EffectAttempt)
	if e.Retrying {
		b = append(b, `,"retrying":true`...)
	}
	if e.Reset != nil {
		b = append(b, `,"reset":[`...)
		for i, id := range e.Reset {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, id)
		}
		b = append(b, ']')
	}
	b = appendOptString(b, "parentStep", e.ParentStep)
	b = appendOptInt(b, "parentAttempt", e.ParentAttempt)
	b = appendOptStrings(b, "slots", e.Slots)
	b = appendOptString(b, "child", e.Child)
	b = appendOptString(b, "key", e.Key)
	b = appendOptString(b, "messageId", e.MessageID)
	b = appendOptInt(b, "iteration", e.Iteration)
	b = append(b, '}')
	// Every field above is written with a leading comma; drop the first.
	if len(b) > start+2 && b[start+1] == ',' {
		b = append(b[:start+1], b[start+2:]...)
	}
	return b
}
