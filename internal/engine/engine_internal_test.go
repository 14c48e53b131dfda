package engine

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/internal/journal"
	"github.com/ordoflow/ordo/ordosqlite"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

func TestKeyLock_SerialisesOneKeyOnly(t *testing.T) {
	t.Parallel()
	k := newKeyLock()
	var inA, peakA atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := k.lock("a")
			n := inA.Add(1)
			for {
				p := peakA.Load()
				if n <= p || peakA.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(time.Millisecond)
			inA.Add(-1)
			unlock()
		}()
	}
	// Another key is not held up by "a".
	done := make(chan struct{})
	go func() {
		unlock := k.lock("b")
		unlock()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("key b waited for key a")
	}
	wg.Wait()
	require.Equal(t, int32(1), peakA.Load(), "one holder of a at a time")
	k.mu.Lock()
	defer k.mu.Unlock()
	require.Empty(t, k.locks, "unused keys are forgotten")
}

func st(id string, seq int64, status ordotype.Status) *journal.State {
	return &journal.State{ID: id, Seq: seq, Status: status}
}

func TestStateCache_PendingAndCommitted(t *testing.T) {
	t.Parallel()
	c := newStateCache(10)
	c.commit("i", nil, st("i", 3, ordotype.StatusRunning))
	c.setPending("i", nil, st("i", 5, ordotype.StatusRunning))

	_, got := c.get("i")
	require.Equal(t, int64(3), got.Seq, "readers see only committed state")
	_, got, pending := c.latest("i")
	require.Equal(t, int64(5), got.Seq, "deciders build on the pending state")
	require.True(t, pending)

	c.commit("i", nil, st("i", 5, ordotype.StatusRunning))
	_, got, pending = c.latest("i")
	require.Equal(t, int64(5), got.Seq)
	require.False(t, pending, "committed")
	c.commit("i", nil, st("i", 4, ordotype.StatusRunning))
	_, got = c.get("i")
	require.Equal(t, int64(5), got.Seq, "an older commit never replaces a newer one")

	c.commit("i", nil, st("i", 9, ordotype.StatusCompleted))
	_, got, _ = c.latest("i")
	require.Nil(t, got, "finished instances leave the cache")

	for i := range 20 {
		c.commit(string(rune('a'+i)), nil, st("x", 1, ordotype.StatusRunning))
	}
	c.mu.Lock()
	require.LessOrEqual(t, len(c.m), 10, "the cache is bounded")
	c.mu.Unlock()
}

func openStore(t *testing.T) ordostore.Store {
	t.Helper()
	s, err := ordosqlite.Open(t.Context(), filepath.Join(t.TempDir(), "c.db"), nil)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func create(id string) *ordostore.Transition {
	now := time.Now()
	return &ordostore.Transition{
		Create: &ordostore.Instance{ID: id, Workflow: "w", Version: 1, Status: ordotype.StatusRunning, Seq: 1, State: []byte(`{}`), CreatedAt: now, UpdatedAt: now},
		Events: []*ordostore.Event{{Seq: 1, Type: "workflow.started", CreatedAt: now}},
	}
}

func TestCommitter_GroupsConcurrentTransitions(t *testing.T) {
	t.Parallel()
	var m metricsHook
	c := newCommitter(openStore(t), 64, &m)
	c.start()
	defer c.close()
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.commit(context.Background(), create(NewID()))
			if err == nil {
				err = res.Err
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, int64(200), m.transitions.Load())
	require.Less(t, m.batches.Load(), int64(200), "concurrent transitions share commits")
}

func TestCommitter_KeepsSubmissionOrderAndIsolatesFailures(t *testing.T) {
	t.Parallel()
	var m metricsHook
	c := newCommitter(openStore(t), 64, &m)
	c.start()
	defer c.close()
	ctx := context.Background()
	now := time.Now()
	// A chain on one instance submitted back to back, with a bad link in
	// the middle: the link after it fails its sequence check, the others
	// are written.
	r0, err := c.submit(ctx, create("i1"))
	require.NoError(t, err)
	adv := func(from int64) *ordostore.Transition {
		return &ordostore.Transition{
			InstanceID: "i1", ExpectedSeq: from,
			Events: []*ordostore.Event{{Seq: from + 1, Type: "x", CreatedAt: now}},
			Update: &ordostore.InstanceUpdate{Status: ordotype.StatusRunning, Seq: from + 1, State: []byte(`{}`), UpdatedAt: now},
		}
	}
	r1, _ := c.submit(ctx, adv(1))
	r2, _ := c.submit(ctx, adv(7)) // wrong seq
	r3, _ := c.submit(ctx, adv(2))
	for i, r := range []*commitReq{r0, r1, r2, r3} {
		res, err := c.wait(r)
		require.NoError(t, err, i)
		if i == 2 {
			require.ErrorIs(t, res.Err, ordotype.ErrConflict)
		} else {
			require.NoError(t, res.Err, i)
		}
	}
}

func TestCommitter_ClosedAnswersErrClosed(t *testing.T) {
	t.Parallel()
	var m metricsHook
	c := newCommitter(openStore(t), 8, &m)
	c.start()
	c.close()
	c.close() // twice is fine
	_, err := c.commit(context.Background(), create("x"))
	require.ErrorIs(t, err, ordotype.ErrClosed)
}
