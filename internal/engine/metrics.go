package engine

import (
	"sync/atomic"

	"github.com/ordoflow/ordo/ordostore"
)

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
	remoteClaims   atomic.Int64
	polledTasks    atomic.Int64
	redelivered    atomic.Int64
	rejected       atomic.Int64
	handedOff      atomic.Int64
	leaseExpiries  atomic.Int64
	takenNext      atomic.Int64
}

// claimed counts the tasks a claim query of this process took, and those
// of them whose lease had run out before (claimed before, and not done).
func (m *metricsHook) claimed(tasks []*ordostore.Task) {
	m.claimedTasks.Add(int64(len(tasks)))
	for _, t := range tasks {
		if t.Claim > 1 {
			m.leaseExpiries.Add(1)
		}
	}
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
	Claims         int64 // claim queries (and reads of due timers on an exclusive store)
	ClaimedTasks   int64 // tasks claimed (or due timers read) by them
	// Remote task queues.
	RemoteClaims int64 // claim queries of workers' polls
	PolledTasks  int64 // tasks handed to workers
	Redelivered  int64 // tasks claimed again after their lease ran out (or was handed back)
	Rejected     int64 // results or heartbeats refused for a lost lease
	HandedOff    int64 // tasks leased at insert to a worker waiting in this process (no claim query)
	// LeaseExpiries counts the tasks this process claimed again after the
	// lease of their holder (a node or a worker) ran out, or was handed
	// back by a node that stopped: their claim was above 1.
	LeaseExpiries int64
	TakenNext     int64 // tasks a worker took in the answer to its completion of the task before (no poll)
	// Long-running flows.
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
		RemoteClaims:   m.remoteClaims.Load(),
		PolledTasks:    m.polledTasks.Load(),
		Redelivered:    m.redelivered.Load(),
		Rejected:       m.rejected.Load(),
		HandedOff:      m.handedOff.Load(),
		LeaseExpiries:  m.leaseExpiries.Load(),
		TakenNext:      m.takenNext.Load(),
	}
}
