package worker

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTaskAttrs(t *testing.T) {
	var buf bytes.Buffer
	base := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	log := slog.New(&taskAttrs{h: base, attrs: []slog.Attr{slog.String("task", "7"), slog.Int("attempt", 2)}})

	log.Debug("not logged")
	require.Empty(t, buf.String(), "below the level, nothing is logged")

	log.Warn("lease lost", "error", "gone")
	require.Equal(t, "level=WARN msg=\"lease lost\" task=7 attempt=2 error=gone\n", buf.String())

	buf.Reset()
	log.With("worker", "w1").WithGroup("g").Info("done", "n", 1)
	require.Equal(t, "level=INFO msg=done task=7 attempt=2 worker=w1 g.n=1\n", buf.String())
}
