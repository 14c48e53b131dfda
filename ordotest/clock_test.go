package ordotest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFakeClock(t *testing.T) {
	t.Parallel()
	start := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewFakeClock(start)
	require.Equal(t, start, c.Now())

	week := c.NewTimer(7 * 24 * time.Hour)
	hour := c.NewTimer(time.Hour)
	stopped := c.NewTimer(time.Minute)
	require.True(t, stopped.Stop())
	require.False(t, stopped.Stop(), "a timer stops once")

	c.Advance(59 * time.Minute)
	select {
	case <-hour.C():
		t.Fatal("fired early")
	default:
	}
	c.Advance(time.Minute)
	require.Equal(t, start.Add(time.Hour), <-hour.C())
	require.False(t, hour.Stop(), "a fired timer cannot be stopped")

	c.Set(start) // never backwards
	require.Equal(t, start.Add(time.Hour), c.Now())

	c.Set(start.Add(8 * 24 * time.Hour))
	require.Equal(t, start.Add(8*24*time.Hour), <-week.C(), "the timer sees the time the clock was set to")
	select {
	case <-stopped.C():
		t.Fatal("a stopped timer fired")
	default:
	}

	now := c.NewTimer(0)
	require.Equal(t, c.Now(), <-now.C(), "a zero timer fires at once")
}
