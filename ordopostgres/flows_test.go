package ordopostgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
)

// TestFlowsAcrossNodes runs long-running flows on two engines sharing one
// schema: deferred instances of one key never overlap wherever they run,
// a message sent through one node reaches an instance the other started,
// and a child workflow's end reaches its parent.
func TestFlowsAcrossNodes(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	ctx := t.Context()
	var mu sync.Mutex
	running, peak := 0, 0
	work := func(_ context.Context, req *ordo.StepRequest) (ordo.Result, error) {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return ordo.Result{Output: map[string]bool{"ok": true}}, nil
	}
	defs := []string{`
workflow: serial
concurrencyKey: input.customer
steps:
  - {id: work, task: {handler: work}}
`, `
workflow: await
steps:
  - {id: wait, receive: {message: Paid, correlate: input.order, timeout: 1h}}
`, `
workflow: parent
steps:
  - {id: kid, workflow: {name: await}}
`}
	cfg := ordo.Config{PollInterval: 100 * time.Millisecond}
	a := newNode(t, schema, "node-a", cfg)
	b := newNode(t, schema, "node-b", cfg)
	for _, eng := range []*ordo.Engine{a, b} {
		for _, src := range defs {
			def, err := ordo.ParseDefinition([]byte(src), "flows.yaml")
			require.NoError(t, err)
			_, err = eng.Register(ctx, def, ordo.Handlers{"work": work})
			require.NoError(t, err)
		}
	}
	store := openSchema(t, schema)

	// Deferred: 20 instances of one key, started on both nodes in turn.
	var ids []string
	for i := range 20 {
		eng := a
		if i%2 == 1 {
			eng = b
		}
		id, err := eng.Start(ctx, "serial", map[string]string{"customer": "c-1"})
		require.NoError(t, err)
		ids = append(ids, id)
	}
	var prevDone time.Time
	for i, id := range ids {
		waitStatus(t, store, id, ordo.StatusCompleted, 30*time.Second)
		evs, err := a.Journal(ctx, id)
		require.NoError(t, err)
		var admitted, done time.Time
		for _, e := range evs {
			switch e.Type {
			case "workflow.admitted":
				admitted = e.Time
			case "workflow.completed":
				done = e.Time
			}
		}
		require.False(t, admitted.Before(prevDone), "instance %d admitted before instance %d completed", i, i-1)
		prevDone = done
	}
	require.Equal(t, 1, peak, "one running instance per key across both nodes")

	// A message kept on node B before the wait; an instance started on A.
	res, err := b.Send(ctx, "Paid", "o-1", map[string]int{"amount": 5}, &ordo.SendOptions{MessageID: "m-1"})
	require.NoError(t, err)
	require.Empty(t, res.DeliveredTo)
	early, err := a.Start(ctx, "await", map[string]string{"order": "o-1"})
	require.NoError(t, err)
	waitStatus(t, store, early, ordo.StatusCompleted, 30*time.Second)

	// A child started through node A waits; the message goes through B.
	parent, err := a.Start(ctx, "parent", map[string]string{"order": "o-2"})
	require.NoError(t, err)
	waitStatus(t, store, parent, ordo.StatusWaiting, 30*time.Second)
	require.Eventually(t, func() bool {
		res, err := b.Send(ctx, "Paid", "o-2", map[string]int{"amount": 7}, &ordo.SendOptions{MessageID: "m-2"})
		require.NoError(t, err)
		return len(res.DeliveredTo) == 1 || res.Duplicate
	}, 30*time.Second, 20*time.Millisecond, "the child begins to wait")
	waitStatus(t, store, parent, ordo.StatusCompleted, 30*time.Second)
	inst, err := a.Get(ctx, parent)
	require.NoError(t, err)
	require.JSONEq(t, `{"amount":7}`, string(inst.Output), "the child's output is the parent step's")
}
