package ordosqlite

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ordoflow/ordo/ordostore"
)

// The events of one transition are stored as one row (see the migration):
// a row per event cost a b-tree insert and an index insert per event, the
// largest share of a group commit. packEvents encodes them as a sequence of
//
//	uvarint seq, uvarint len(type) type, uvarint len(step) step,
//	varint attempt, varint created_at (Unix ns), uvarint data
//
// where data is 0 for nil, else len(data)+1 followed by the bytes.
func packEvents(b []byte, events []*ordostore.Event) []byte {
	for _, ev := range events {
		b = binary.AppendUvarint(b, uint64(ev.Seq))
		b = binary.AppendUvarint(b, uint64(len(ev.Type)))
		b = append(b, ev.Type...)
		b = binary.AppendUvarint(b, uint64(len(ev.StepID)))
		b = append(b, ev.StepID...)
		b = binary.AppendVarint(b, int64(ev.Attempt))
		b = binary.AppendVarint(b, toNanos(ev.CreatedAt))
		if ev.Data == nil {
			b = binary.AppendUvarint(b, 0)
		} else {
			b = binary.AppendUvarint(b, uint64(len(ev.Data))+1)
			b = append(b, ev.Data...)
		}
	}
	return b
}

var errCorruptEvents = errors.New("corrupt packed events")

// unpackEvents decodes what packEvents wrote, appending to out the events
// whose seq is greater than afterSeq.
func unpackEvents(out []*ordostore.Event, instanceID string, b []byte, afterSeq int64) ([]*ordostore.Event, error) {
	uvarint := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errCorruptEvents
		}
		b = b[n:]
		return v, nil
	}
	varint := func() (int64, error) {
		v, n := binary.Varint(b)
		if n <= 0 {
			return 0, errCorruptEvents
		}
		b = b[n:]
		return v, nil
	}
	bytesOf := func(n uint64) ([]byte, error) {
		if n > uint64(len(b)) {
			return nil, errCorruptEvents
		}
		v := b[:n:n]
		b = b[n:]
		return v, nil
	}
	for len(b) > 0 {
		seq, err := uvarint()
		if err != nil {
			return nil, err
		}
		ev := &ordostore.Event{InstanceID: instanceID, Seq: int64(seq)}
		n, err := uvarint()
		if err != nil {
			return nil, err
		}
		typ, err := bytesOf(n)
		if err != nil {
			return nil, err
		}
		ev.Type = string(typ)
		if n, err = uvarint(); err != nil {
			return nil, err
		}
		step, err := bytesOf(n)
		if err != nil {
			return nil, err
		}
		ev.StepID = string(step)
		attempt, err := varint()
		if err != nil {
			return nil, err
		}
		ev.Attempt = int(attempt)
		created, err := varint()
		if err != nil {
			return nil, err
		}
		ev.CreatedAt = fromNanos(created)
		if n, err = uvarint(); err != nil {
			return nil, err
		}
		if n > 0 {
			data, err := bytesOf(n - 1)
			if err != nil {
				return nil, err
			}
			ev.Data = make([]byte, len(data))
			copy(ev.Data, data)
		}
		if ev.Seq > afterSeq {
			out = append(out, ev)
		}
	}
	return out, nil
}

// unpackRow decodes one row of the events table.
func unpackRow(out []*ordostore.Event, instanceID string, packed []byte, afterSeq int64) ([]*ordostore.Event, error) {
	out, err := unpackEvents(out, instanceID, packed, afterSeq)
	if err != nil {
		return nil, fmt.Errorf("events of %s: %w", instanceID, err)
	}
	return out, nil
}
