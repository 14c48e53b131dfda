package journal

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ordoflow/ordo/ordotype"
)

// DecodeState decodes a state stored by [State.AppendJSON] (or by
// json.Marshal, which writes the same JSON). It gives the same State as
// json.Unmarshal, several times faster: an instance's state is decoded each
// time it is loaded cold, as when a timer fires long after the instance
// waited. It reads the form AppendJSON writes (known keys, no whitespace,
// no escapes, no nulls but "steps":null) and hands anything else, and any
// error, to json.Unmarshal.
func DecodeState(data []byte) (*State, error) {
	st := new(State)
	d := decoder{data: data}
	if d.state(st) && d.i == len(d.data) {
		return st, nil
	}
	st = new(State)
	if err := json.Unmarshal(data, st); err != nil {
		return nil, err
	}
	return st, nil
}

// decoder reads the JSON AppendJSON writes. Each method reports false when
// it meets anything else, and the caller falls back to encoding/json.
type decoder struct {
	data []byte
	i    int
}

func (d *decoder) peek() byte {
	if d.i < len(d.data) {
		return d.data[d.i]
	}
	return 0
}

func (d *decoder) eat(c byte) bool {
	if d.peek() != c {
		return false
	}
	d.i++
	return true
}

// object calls field for each key of an object until the closing brace.
func (d *decoder) object(field func(key []byte) bool) bool {
	if !d.eat('{') {
		return false
	}
	if d.eat('}') {
		return true
	}
	for {
		key, ok := d.rawString()
		if !ok || !d.eat(':') || !field(key) {
			return false
		}
		if d.eat('}') {
			return true
		}
		if !d.eat(',') {
			return false
		}
	}
}

// rawString returns the bytes of a string without escapes, which are then
// the string itself.
func (d *decoder) rawString() ([]byte, bool) {
	if !d.eat('"') {
		return nil, false
	}
	start := d.i
	ascii := true
	for ; d.i < len(d.data); d.i++ {
		switch c := d.data[d.i]; {
		case c == '"':
			s := d.data[start:d.i]
			d.i++
			return s, ascii || utf8.Valid(s)
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return nil, false
}

func (d *decoder) string(dst *string) bool {
	s, ok := d.rawString()
	*dst = string(s)
	return ok
}

func (d *decoder) int(dst *int) bool {
	var n int64
	ok := d.int64(&n)
	*dst = int(n)
	return ok && int64(*dst) == n
}

// int64 reads an integer as JSON writes it: no leading zeros, no
// fraction or exponent.
func (d *decoder) int64(dst *int64) bool {
	start := d.i
	if d.peek() == '-' {
		d.i++
	}
	digits := d.i
	for c := d.peek(); c >= '0' && c <= '9'; c = d.peek() {
		d.i++
	}
	if d.i == digits || (d.data[digits] == '0' && d.i-digits > 1) {
		return false
	}
	n, err := strconv.ParseInt(string(d.data[start:d.i]), 10, 64)
	*dst = n
	return err == nil && d.peek() != '.' && d.peek() != 'e' && d.peek() != 'E'
}

func (d *decoder) bool(dst *bool) bool {
	switch {
	case d.literal("true"):
		*dst = true
	case d.literal("false"):
		*dst = false
	default:
		return false
	}
	return true
}

func (d *decoder) literal(lit string) bool {
	if len(d.data)-d.i < len(lit) || string(d.data[d.i:d.i+len(lit)]) != lit {
		return false
	}
	d.i += len(lit)
	return true
}

// time decodes a time as time.Time's UnmarshalJSON does.
func (d *decoder) time(dst *time.Time) bool {
	start := d.i
	if _, ok := d.rawString(); !ok {
		return false
	}
	return dst.UnmarshalJSON(d.data[start:d.i]) == nil
}

// raw copies a JSON value that is not null, as json.RawMessage does, once
// json.Valid accepts it.
func (d *decoder) raw(dst *json.RawMessage) bool {
	start := d.i
	if !d.skip() {
		return false
	}
	v := d.data[start:d.i]
	if string(v) == "null" || !json.Valid(v) {
		return false
	}
	*dst = append(json.RawMessage(nil), v...)
	return true
}

// skip moves past one JSON value: to the comma or closing bracket that
// ends it, or the end of the data. It does not check the value; raw checks
// it with json.Valid.
func (d *decoder) skip() bool {
	depth := 0
	for d.i < len(d.data) {
		switch c := d.data[d.i]; {
		case c == '"':
			for d.i++; d.i < len(d.data) && d.data[d.i] != '"'; d.i++ {
				if d.data[d.i] == '\\' {
					d.i++
				}
			}
			if d.i >= len(d.data) {
				return false
			}
			d.i++
		case c == '{' || c == '[':
			depth++
			d.i++
		case c == '}' || c == ']':
			if depth == 0 {
				return true
			}
			depth--
			d.i++
		case c == ',' && depth == 0:
			return true
		default:
			d.i++
		}
	}
	return depth == 0
}

func (d *decoder) strings(dst *[]string) bool {
	if !d.eat('[') {
		return false
	}
	*dst = []string{}
	if d.eat(']') {
		return true
	}
	for {
		var s string
		if !d.string(&s) {
			return false
		}
		*dst = append(*dst, s)
		if d.eat(']') {
			return true
		}
		if !d.eat(',') {
			return false
		}
	}
}

// error decodes an error object; a second "error" key of the same object
// decodes into the first's Error, as encoding/json does.
func (d *decoder) error(dst **Error) bool {
	if *dst == nil {
		*dst = new(Error)
	}
	e := *dst
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "message":
			return d.string(&e.Message)
		case "code":
			return d.string(&e.Code)
		case "step":
			return d.string(&e.Step)
		case "retryable":
			return d.bool(&e.Retryable)
		}
		return false
	})
}

func (d *decoder) state(s *State) bool {
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "id":
			return d.string(&s.ID)
		case "workflow":
			return d.string(&s.Workflow)
		case "version":
			return d.int(&s.Version)
		case "status":
			var v string
			ok := d.string(&v)
			s.Status = ordotype.Status(v)
			return ok
		case "idempotencyKey":
			return d.string(&s.IdempotencyKey)
		case "businessKey":
			return d.string(&s.BusinessKey)
		case "parentId":
			return d.string(&s.ParentID)
		case "traceParent":
			return d.string(&s.TraceParent)
		case "input":
			return d.raw(&s.Input)
		case "state":
			return d.raw(&s.Data)
		case "output":
			return d.raw(&s.Output)
		case "error":
			return d.error(&s.Error)
		case "steps":
			if d.literal("null") {
				s.Steps = nil
				return true
			}
			return d.steps(s)
		case "pendingEffects":
			return d.int(&s.PendingEffects)
		case "seq":
			return d.int64(&s.Seq)
		case "createdAt":
			return d.time(&s.CreatedAt)
		case "updatedAt":
			return d.time(&s.UpdatedAt)
		case "finishedAt":
			return d.time(&s.FinishedAt)
		case "parentStep":
			return d.string(&s.ParentStep)
		case "parentAttempt":
			return d.int(&s.ParentAttempt)
		case "slots":
			return d.strings(&s.Slots)
		case "compensating":
			return d.bool(&s.Compensating)
		case "messages":
			return d.strings(&s.Messages)
		case "loops":
			if s.Loops == nil {
				s.Loops = map[string]int{}
			}
			return d.object(func(key []byte) bool {
				var n int
				ok := d.int(&n)
				s.Loops[string(key)] = n
				return ok
			})
		}
		return false
	})
}

func (d *decoder) steps(s *State) bool {
	if s.Steps == nil {
		s.Steps = map[string]*StepState{}
	}
	return d.object(func(key []byte) bool {
		st := new(StepState)
		s.Steps[string(key)] = st
		return d.step(st)
	})
}

func (d *decoder) step(st *StepState) bool {
	return d.object(func(key []byte) bool {
		switch string(key) {
		case "status":
			var v string
			ok := d.string(&v)
			st.Status = ordotype.StepStatus(v)
			return ok
		case "attempt":
			return d.int(&st.Attempt)
		case "firstAttempt":
			return d.int(&st.FirstAttempt)
		case "input":
			return d.raw(&st.Input)
		case "output":
			return d.raw(&st.Output)
		case "error":
			return d.error(&st.Error)
		case "reason":
			return d.string(&st.Reason)
		case "pendingEffects":
			return d.int(&st.PendingEffects)
		case "failedEffects":
			return d.int(&st.FailedEffects)
		case "dueAt":
			return d.time(&st.DueAt)
		case "startedAt":
			return d.time(&st.StartedAt)
		case "finishedAt":
			return d.time(&st.FinishedAt)
		case "child":
			return d.string(&st.Child)
		case "key":
			return d.string(&st.Key)
		case "messageId":
			return d.string(&st.MessageID)
		case "completedSeq":
			return d.int64(&st.CompletedSeq)
		}
		return false
	})
}
