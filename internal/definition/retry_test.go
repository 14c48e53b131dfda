package definition

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRetryPolicy_Backoff(t *testing.T) {
	t.Parallel()

	noJitter := RetryPolicy{MaxAttempts: 10, InitialInterval: time.Second, BackoffFactor: 2, MaxInterval: time.Minute}
	tests := []struct {
		name    string
		policy  RetryPolicy
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{"FirstAttempt", noJitter, 1, 0.5, 0},
		{"FirstRetry", noJitter, 2, 0.5, time.Second},
		{"SecondRetry", noJitter, 3, 0.5, 2 * time.Second},
		{"ThirdRetry", noJitter, 4, 0.5, 4 * time.Second},
		{"Capped", noJitter, 8, 0.5, time.Minute},
		{"CappedHuge", noJitter, 10_000, 0.5, time.Minute},
		{"Uncapped", RetryPolicy{InitialInterval: time.Second, BackoffFactor: 3}, 5, 0, 27 * time.Second},
		{"UncappedOverflow", RetryPolicy{InitialInterval: time.Second, BackoffFactor: 10}, 100, 0, time.Duration(1<<63 - 1)},
		{"Constant", RetryPolicy{InitialInterval: 5 * time.Second, BackoffFactor: 1, MaxInterval: time.Minute}, 7, 0, 5 * time.Second},
		{"Fractional", RetryPolicy{InitialInterval: time.Second, BackoffFactor: 1.5, MaxInterval: time.Minute}, 4, 0, 2250 * time.Millisecond},
		{"JitterLow", RetryPolicy{InitialInterval: 10 * time.Second, BackoffFactor: 2, MaxInterval: time.Minute, Jitter: 0.2}, 2, 0, 8 * time.Second},
		{"JitterMiddle", RetryPolicy{InitialInterval: 10 * time.Second, BackoffFactor: 2, MaxInterval: time.Minute, Jitter: 0.2}, 2, 0.5, 10 * time.Second},
		{"JitterCappedAbove", RetryPolicy{InitialInterval: 10 * time.Second, BackoffFactor: 2, MaxInterval: 10 * time.Second, Jitter: 0.5}, 3, 0.99, 10 * time.Second},
		{"ZeroPolicy", RetryPolicy{}, 3, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.policy.Backoff(tt.attempt, tt.rnd))
		})
	}
}

func TestRetryPolicy_BackoffJitterBounds(t *testing.T) {
	t.Parallel()

	p := DefaultRetryPolicy()
	for attempt := 2; attempt <= 12; attempt++ {
		base := min(time.Duration(float64(p.InitialInterval)*float64(int(1)<<(attempt-2))), p.MaxInterval)
		low := time.Duration(float64(base) * (1 - p.Jitter))
		for i := range 100 {
			got := p.Backoff(attempt, float64(i)/100)
			require.GreaterOrEqual(t, got, low, "attempt %d", attempt)
			require.LessOrEqual(t, got, min(time.Duration(float64(base)*(1+p.Jitter)), p.MaxInterval), "attempt %d", attempt)
		}
	}
}

func TestDefaultRetryPolicy(t *testing.T) {
	t.Parallel()

	require.Equal(t, RetryPolicy{MaxAttempts: 3, InitialInterval: time.Second, BackoffFactor: 2, MaxInterval: time.Minute, Jitter: 0.2}, DefaultRetryPolicy())
}
