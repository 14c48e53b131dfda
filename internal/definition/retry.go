package definition

import (
	"math"
	"time"
)

// RetryPolicy says how often and how fast a failed step is tried again.
// In a compiled [Workflow] every field is resolved: the step's fields over
// the workflow's over the defaults below.
type RetryPolicy struct {
	// MaxAttempts is the total number of attempts including the first.
	// Defaults to 3.
	MaxAttempts int
	// InitialInterval is the delay before the first retry. Defaults to 1
	// second.
	InitialInterval time.Duration
	// BackoffFactor multiplies the delay after each retry. Defaults to 2.
	BackoffFactor float64
	// MaxInterval caps the delay. Defaults to 1 minute. Zero means no cap.
	MaxInterval time.Duration
	// Jitter is the fraction of each delay, in [0, 1], that is randomly
	// added to or taken from it. Defaults to 0.2.
	Jitter float64
}

// DefaultRetryPolicy returns the built-in retry policy.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{
		MaxAttempts:     3,
		InitialInterval: time.Second,
		BackoffFactor:   2,
		MaxInterval:     time.Minute,
		Jitter:          0.2,
	}
}

// Backoff returns the delay before attempt number attempt, where attempt 2
// is the first retry: InitialInterval * BackoffFactor^(attempt-2), capped at
// MaxInterval, then moved by up to Jitter of itself in either direction as
// rnd goes from 0 to 1. rnd is a random value in [0, 1). The result never
// exceeds MaxInterval (when set) and is never negative; it is 0 for
// attempt < 2.
func (p RetryPolicy) Backoff(attempt int, rnd float64) time.Duration {
	if attempt < 2 || p.InitialInterval <= 0 {
		return 0
	}
	limit := float64(math.MaxInt64)
	if p.MaxInterval > 0 {
		limit = float64(p.MaxInterval)
	}
	// The comparisons below also replace NaN with a sane value.
	factor := 1.0
	if p.BackoffFactor > 1 {
		factor = p.BackoffFactor
	}
	delay := min(float64(p.InitialInterval)*math.Pow(factor, float64(attempt-2)), limit)
	jitter := 0.0
	if p.Jitter > 0 {
		jitter = min(p.Jitter, 1)
	}
	if !(rnd > 0) {
		rnd = 0
	}
	rnd = min(rnd, 1)
	delay += (2*rnd - 1) * jitter * delay
	delay = min(max(delay, 0), limit)
	if delay >= float64(math.MaxInt64) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(delay)
}
