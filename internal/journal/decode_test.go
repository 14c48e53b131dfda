package journal

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// requireDecodesAsJSON requires that DecodeState gives what json.Unmarshal
// gives for data: the same State, or an error for both.
func requireDecodesAsJSON(t *testing.T, data []byte) {
	t.Helper()
	want := new(State)
	wantErr := json.Unmarshal(data, want)
	got, err := DecodeState(data)
	if wantErr != nil {
		require.Error(t, err, "%s", data)
		return
	}
	require.NoError(t, err, "%s", data)
	require.Equal(t, want, got, "%s", data)
}

func TestDecodeState_AsJSONUnmarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		requireDecodesAsJSON(t, randomState(r).AppendJSON(nil))
	}
}

func TestDecodeState_OtherForms(t *testing.T) {
	for _, data := range []string{
		`{"id":"a","steps":null,"seq":1}`,
		`{"id":"a","steps":{},"loops":{}}`,
		`{"id":"a","steps":{"x":{"status":"completed","error":{"message":"m"},"error":{"code":"c"}}}}`,
		`{"id":"a","error":{"message":"m"},"error":{"code":"c"}}`,
		`{"id":"a","steps":{"x":{"status":"running"}},"steps":{"y":{"status":"waiting"}}}`,
		`{"id":"a","loops":{"x":1},"loops":{"y":2}}`,
		`{"id":"a","slots":[],"messages":["m1","m2"]}`,
		`{ "id": "a" }`,
		`{"id":"a"} `,
		`{"ID":"a"}`,
		`{"id":"a","unknown":1}`,
		`{"id":"a\u00e9\n"}`,
		`{"id":"\xff"}`,
		`{"id":null,"input":null}`,
		`{"input":{"a":"}\"]"},"state":[1,{"b":null}],"output":"x,y"}`,
		`{"input":{"a":}}`,
		`{"input":}`,
		`{"input"`,
		`{"version":01}`,
		`{"version":-0}`,
		`{"version":1.0}`,
		`{"version":1e2}`,
		`{"version":99999999999999999999}`,
		`{"seq":-5}`,
		`{"compensating":true,"compensating":false}`,
		`{"createdAt":"2030-01-01T00:00:00.5+01:00"}`,
		`{"createdAt":"2030-01-01 00:00:00"}`,
		`{"createdAt":"not a time"}`,
		`{"steps":{"x":{"dueAt":"2030-01-01T00:00:00Z","completedSeq":3,"attempt":2}}}`,
		`{"id":"a"}x`,
		`[]`,
		``,
		`null`,
	} {
		requireDecodesAsJSON(t, []byte(data))
	}
}

func FuzzDecodeState(f *testing.F) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		f.Add(randomState(r).AppendJSON(nil))
	}
	f.Add([]byte(`{"id":"a","steps":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		requireDecodesAsJSON(t, data)
	})
}

// BenchmarkDecodeState compares DecodeState with json.Unmarshal on the
// state of an instance that waits on a timer.
func BenchmarkDecodeState(b *testing.B) {
	data := []byte(`{"id":"01a2142a-dff5-77cc-950a-f79cdb0c5c27","workflow":"bench-fire","version":1,"status":"waiting","input":{},"steps":{"wait":{"status":"waiting","attempt":1,"firstAttempt":1,"input":{},"dueAt":"2030-01-01T01:00:00Z"}},"seq":2,"createdAt":"2030-01-01T00:00:00Z","updatedAt":"2030-01-01T00:00:00Z"}`)
	b.Run("DecodeState", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := DecodeState(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := json.Unmarshal(data, new(State)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
