package ordocli

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseAge(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"30d":    30 * 24 * time.Hour,
		"2w":     14 * 24 * time.Hour,
		"1d12h":  36 * time.Hour,
		"720h":   720 * time.Hour,
		"90m":    90 * time.Minute,
		" 7d ":   7 * 24 * time.Hour,
		"1w2d3h": (9*24 + 3) * time.Hour,
	} {
		got, err := parseAge(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "d", "30", "30x", "-1d", "0d", "1d-2h", "999999999d"} {
		_, err := parseAge(bad)
		require.Error(t, err, bad)
	}
}
