package ordosqlite

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordostore"
)

func TestPackEvents_RoundTrip(t *testing.T) {
	t.Parallel()
	at := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	in := []*ordostore.Event{
		{InstanceID: "i", Seq: 7, Type: "step.completed", StepID: "charge", Attempt: 3, Data: []byte(`{"a":1}`), CreatedAt: at},
		{InstanceID: "i", Seq: 8, Type: "workflow.completed", Data: []byte{}, CreatedAt: at},
		{InstanceID: "i", Seq: 9, Type: "x", StepID: "é", Attempt: -1, Data: nil},
		{InstanceID: "i", Seq: 10, Type: "bin", Data: []byte{0, 0xff, 1}},
	}
	packed := packEvents(nil, in)
	out, err := unpackEvents(nil, "i", packed, 0)
	require.NoError(t, err)
	require.Equal(t, in, out)
	require.Nil(t, out[2].Data, "nil data stays nil")
	require.NotNil(t, out[1].Data, "empty data stays empty")

	out, err = unpackEvents(nil, "i", packed, 8)
	require.NoError(t, err)
	require.Equal(t, in[2:], out, "only events after afterSeq")
}

func TestUnpackEvents_Corrupt(t *testing.T) {
	t.Parallel()
	packed := packEvents(nil, []*ordostore.Event{{Seq: 1, Type: "step.completed", Data: []byte(`{"a":1}`)}})
	for n := 1; n < len(packed); n++ {
		_, err := unpackEvents(nil, "i", packed[:n], 0)
		require.ErrorIs(t, err, errCorruptEvents, "truncated at %d", n)
	}
}
