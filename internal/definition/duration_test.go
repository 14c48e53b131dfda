package definition

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "90s", want: 90 * time.Second},
		{in: "1h30m", want: 90 * time.Minute},
		{in: "168h", want: 7 * 24 * time.Hour},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "0", want: 0},
		{in: "P7D", want: 7 * 24 * time.Hour},
		{in: "PT2H", want: 2 * time.Hour},
		{in: "P1DT12H", want: 36 * time.Hour},
		{in: "PT1M30S", want: 90 * time.Second},
		{in: "PT0.5S", want: 500 * time.Millisecond},
		{in: "PT1.5H", want: 90 * time.Minute},
		{in: "P2W", want: 14 * 24 * time.Hour},
		{in: "PT0S", want: 0},
		{in: "-5s", err: `invalid duration "-5s": must not be negative`},
		{in: "5", err: `invalid duration "5" (use a Go duration such as 90s or 1h30m, or ISO 8601 such as PT2H or P7D)`},
		{in: "", err: `invalid duration "" (use a Go duration such as 90s or 1h30m, or ISO 8601 such as PT2H or P7D)`},
		{in: "P", err: `invalid ISO 8601 duration "P": no components`},
		{in: "PT", err: `invalid ISO 8601 duration "PT": no components`},
		{in: "P1DT", err: `invalid ISO 8601 duration "P1DT": nothing after T`},
		{in: "P1Y", err: `invalid ISO 8601 duration "P1Y": years and months have no fixed length; use days (D) or weeks (W)`},
		{in: "P1M", err: `invalid ISO 8601 duration "P1M": years and months have no fixed length; use days (D) or weeks (W)`},
		{in: "PT1D", err: `invalid ISO 8601 duration "PT1D": unexpected 'D'`},
		{in: "P1H", err: `invalid ISO 8601 duration "P1H": unexpected 'H'`},
		{in: "PT1S1M", err: `invalid ISO 8601 duration "PT1S1M": unexpected 'M'`},
		{in: "PT1H1H", err: `invalid ISO 8601 duration "PT1H1H": unexpected 'H'`},
		{in: "PTT1H", err: `invalid ISO 8601 duration "PTT1H": T appears twice`},
		{in: "P1", err: `invalid ISO 8601 duration "P1": expected a number followed by W, D, H, M or S`},
		{in: "PT1.2.3S", err: `invalid ISO 8601 duration "PT1.2.3S": malformed number`},
		{in: "PT.S", err: `invalid ISO 8601 duration "PT.S": malformed number`},
		{in: "P99999999999999999999D", err: `invalid ISO 8601 duration "P99999999999999999999D": too long`},
		{in: "P100000D P100000D", err: `invalid ISO 8601 duration "P100000D P100000D": expected a number followed by W, D, H, M or S`},
		{in: "P100000DT2562047H", err: `invalid ISO 8601 duration "P100000DT2562047H": too long`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseDuration(tt.in)
			if tt.err != "" {
				require.EqualError(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, Duration(tt.want), got)
		})
	}
}

func TestDuration_JSON(t *testing.T) {
	t.Parallel()

	b, err := json.Marshal(Duration(90 * time.Second))
	require.NoError(t, err)
	require.JSONEq(t, `"1m30s"`, string(b))

	var d Duration
	require.NoError(t, json.Unmarshal([]byte(`"P1D"`), &d))
	require.Equal(t, Duration(24*time.Hour), d)
	require.EqualError(t, json.Unmarshal([]byte(`30`), &d), "duration must be a string such as 30s or PT30S")
	require.Error(t, json.Unmarshal([]byte(`"-1s"`), &d))
}

func TestStringList_JSON(t *testing.T) {
	t.Parallel()

	var l StringList
	require.NoError(t, json.Unmarshal([]byte(`"a"`), &l))
	require.Equal(t, StringList{"a"}, l)
	require.NoError(t, json.Unmarshal([]byte(`["a", "b"]`), &l))
	require.Equal(t, StringList{"a", "b"}, l)
	require.EqualError(t, json.Unmarshal([]byte(`1`), &l), "must be a string or a list of strings")
}
