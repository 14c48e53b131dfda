package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordopostgres"
	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// clusterDefinition is the order flow with every step on a remote worker's
// queue, a timer between payment and the rest (timers are fired by the
// nodes), and a side effect on notify (performed by the nodes).
const clusterDefinition = `workflow: cluster-order
idempotencyKey: input.orderId
steps:
  - {id: payment, task: {queue: payment}}
  - {id: settle, after: [payment], timer: {duration: 50ms}}
  - {id: inventory, after: [settle], task: {queue: inventory}}
  - {id: shipping, after: [settle], task: {queue: shipping}}
  - {id: ship, after: [inventory, shipping], task: {queue: shipping}}
  - {id: notify, after: [ship], task: {queue: notify}}
`

const (
	clusterOrders = 2000
	clusterLease  = 3 * time.Second // the nodes' lease and the workers' task lease
)

// cluster is three `ordo server` processes on one PostgreSQL schema.
type cluster struct {
	t      *testing.T
	bin    string
	args   []string
	mu     sync.Mutex
	nodes  [3]*serverProcess
	urls   [3]string
	killed atomic.Bool
}

func (c *cluster) start(i int) {
	args := append(append([]string{}, c.args...), "--node-id", "node-"+strconv.Itoa(i))
	p := startServer(c.t, c.bin, nil, args...)
	c.mu.Lock()
	c.nodes[i], c.urls[i] = p, p.url
	c.mu.Unlock()
}

// client returns a client of node i (wrapping around), or "" when it is down.
func (c *cluster) client(i int) *ordoclient.Client {
	c.mu.Lock()
	u := c.urls[i%3]
	c.mu.Unlock()
	if u == "" {
		return nil
	}
	cl, err := ordoclient.New(u, &ordoclient.Options{})
	if err != nil {
		return nil
	}
	return cl
}

// TestCluster_KillANode runs 2,000 orders on three `ordo server` processes
// sharing one PostgreSQL schema, worked by remote HTTP workers that poll
// any node. One node is killed with SIGKILL mid-run and started again.
// Every order completes once, each step completion is journaled once, no
// task is left behind, and the work the killed node had claimed (timers,
// side effects) is done within its lease + 5 s.
func TestCluster_KillANode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three servers and kills one; skipped with -short")
	}
	t.Parallel()
	pgURL, schema := pgSchema(t)
	c := &cluster{t: t, bin: ordoBinary(t), args: []string{
		"server", "--db", pgURL, "--schema", schema, "--addr", "127.0.0.1:0",
		"--lease", clusterLease.String(), "--task-lease", clusterLease.String(),
	}}
	for i := range 3 {
		c.start(i)
	}
	ctx := t.Context()
	def, err := os.CreateTemp(t.TempDir(), "*.yaml")
	require.NoError(t, err)
	_, err = def.WriteString(clusterDefinition)
	require.NoError(t, err)
	require.NoError(t, def.Close())
	_, errOut, code := ordo(t, c.bin, nil, "deploy", def.Name(), "--server", c.urls[0])
	require.Equal(t, 0, code, errOut)

	// Workers: each polls the nodes in turn and completes through the node
	// it polled; a node that does not answer is skipped.
	wctx, stopWorkers := context.WithCancel(ctx)
	defer stopWorkers()
	var wg sync.WaitGroup
	var completed atomic.Int64
	for w := range 6 {
		wg.Go(func() {
			name := "w" + strconv.Itoa(w)
			for n := w; wctx.Err() == nil; n++ {
				cl := c.client(n)
				if cl == nil {
					continue
				}
				tasks, err := cl.PollTasks(wctx, &ordoclient.PollRequest{
					Queues: []string{"payment", "inventory", "shipping", "notify"}, Worker: name, Max: 16, WaitSeconds: 1,
				})
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				for _, tk := range tasks {
					req := &ordoclient.CompleteRequest{Claim: tk.Claim, Output: json.RawMessage(`{"by":"` + name + `"}`)}
					if tk.Step == "notify" {
						req.Effects = []ordoclient.Effect{{Type: "log", Payload: json.RawMessage(`{"message":"order shipped"}`)}}
					}
					if err := cl.CompleteTask(wctx, tk.ID, req); err == nil {
						completed.Add(1)
					}
					// A lost answer leaves the task leased to this worker:
					// it is delivered again when the lease ends.
				}
			}
		})
	}

	// Start the orders through the nodes in turn; a start that fails (the
	// node died) is retried on the next node with the same order id, which
	// the definition's idempotency key makes harmless.
	var started atomic.Int64
	var sg sync.WaitGroup
	for g := range 8 {
		sg.Go(func() {
			for i := g; i < clusterOrders; i += 8 {
				input := json.RawMessage(fmt.Sprintf(`{"orderId":"o-%d"}`, i))
				for n := i; ; n++ {
					cl := c.client(n)
					if cl == nil {
						continue
					}
					if _, err := cl.Start(ctx, "cluster-order", &ordoclient.StartRequest{Input: input}); err == nil {
						break
					}
					require.NoError(t, ctx.Err())
					time.Sleep(10 * time.Millisecond)
				}
				started.Add(1)
			}
		})
	}

	// Kill node 2 once a quarter of the orders have started, and look at
	// what it held.
	store, err := ordopostgres.Open(ctx, pgURL, &ordopostgres.Config{Schema: schema})
	require.NoError(t, err)
	defer store.Close()
	require.Eventually(t, func() bool { return started.Load() >= clusterOrders/4 }, 2*time.Minute, 10*time.Millisecond)
	c.mu.Lock()
	victim := c.nodes[2]
	c.urls[2] = ""
	c.mu.Unlock()
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	_ = victim.cmd.Wait()
	killedAt := time.Now()
	open, err := store.ListTasks(ctx, &ordostore.ListTasksParams{Limit: 100000})
	require.NoError(t, err)
	var held []int64
	for _, tk := range open {
		if tk.LeaseOwner == "node-2" {
			held = append(held, tk.ID)
		}
	}
	t.Logf("killed node-2 with %d orders started, %d step completions by workers, %d tasks leased to it", started.Load(), completed.Load(), len(held))
	time.Sleep(time.Second)
	c.start(2) // the same node again, on a new port

	// The killed node's claimed work is done within its lease + 5 s.
	deadline := killedAt.Add(clusterLease + 5*time.Second)
	for _, id := range held {
		for {
			_, err := store.GetTask(ctx, id)
			if errors.Is(err, ordotype.ErrNotFound) {
				break
			}
			require.True(t, time.Now().Before(deadline), "task %d, leased to the killed node, is still not done %s after the kill", id, time.Since(killedAt))
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("the killed node's %d tasks were done %s after the kill", len(held), time.Since(killedAt).Round(time.Millisecond))

	sg.Wait()
	require.Eventually(t, func() bool {
		n, err := store.CountInstances(ctx, &ordostore.CountInstancesParams{Statuses: []ordotype.Status{ordotype.StatusCompleted}})
		require.NoError(t, err)
		return len(n) == 1 && n[0].N == clusterOrders
	}, 3*time.Minute, 100*time.Millisecond, "every order completes")
	stopWorkers()
	wg.Wait()

	insts, err := store.ListInstances(ctx, &ordostore.ListInstancesParams{Limit: 2 * clusterOrders})
	require.NoError(t, err)
	require.Len(t, insts, clusterOrders, "one instance per order: retried starts started none twice")
	want := map[string]int{"payment": 1, "settle": 1, "inventory": 1, "shipping": 1, "ship": 1, "notify": 1}
	for _, inst := range insts {
		events, err := store.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: inst.ID})
		require.NoError(t, err)
		got := map[string]int{}
		effects := 0
		for i, e := range events {
			require.Equal(t, int64(i+1), e.Seq, "gapless journal")
			switch e.Type {
			case "step.completed":
				got[e.StepID]++
			case "effect.completed":
				effects++
			}
		}
		require.Equal(t, want, got, "instance %s: each step completion journaled once", inst.ID)
		require.Equal(t, 1, effects, "instance %s: the side effect's outcome journaled once", inst.ID)
	}
	left, err := store.CountTasks(ctx, &ordostore.CountTasksParams{})
	require.NoError(t, err)
	require.Zero(t, left, "no task left behind")
}
