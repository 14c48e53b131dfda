package engine

import "sync/atomic"

// metricsHook counts what the engine does. It is cheap enough for the hot
// path (atomic adds) and read by Stats.
type metricsHook struct {
	batches        atomic.Int64
	transitions    atomic.Int64
	batchErrors    atomic.Int64
	conflicts      atomic.Int64
	duplicates     atomic.Int64
	stepsRun       atomic.Int64
	effectsRun     atomic.Int64
	effectFailures atomic.Int64
	claims         atomic.Int64
	claimedTasks   atomic.Int64
}

func (m *metricsHook) batch(n int, err error) {
	m.batches.Add(1)
	m.transitions.Add(int64(n))
	if err != nil {
		m.batchErrors.Add(1)
	}
}

// Stats is a snapshot of the engine's counters since it started.
type Stats struct {
	Batches        int64 // group commits
	Transitions    int64 // transitions written in them
	BatchErrors    int64 // group commits that failed as a whole
	Conflicts      int64 // transitions retried after an optimistic-concurrency conflict
	Duplicates     int64 // completions dropped as duplicates or stale
	StepsRun       int64 // step attempts run by this process
	EffectsRun     int64 // side-effect tries performed by this process
	EffectFailures int64 // side-effect tries that failed in this process
	Claims         int64 // claim queries
	ClaimedTasks   int64 // tasks claimed by them

	MessagesSent      int64 // messages kept for receive steps
	MessagesDelivered int64 // messages a receive step took
	MessagesDropped   int64 // messages that expired before a receive step took them
	ChildrenStarted   int64 // child instances started by workflow steps
	Admitted          int64 // deferred instances admitted
}

func (m *metricsHook) snapshot() Stats {
	return Stats{
		Batches:        m.batches.Load(),
		Transitions:    m.transitions.Load(),
		BatchErrors:    m.batchErrors.Load(),
		Conflicts:      m.conflicts.Load(),
		Duplicates:     m.duplicates.Load(),
		StepsRun:       m.stepsRun.Load(),
		EffectsRun:     m.effectsRun.Load(),
		EffectFailures: m.effectFailures.Load(),
		Claims:         m.claims.Load(),
		ClaimedTasks:   m.claimedTasks.Load(),
	}
}
