package ordosqlite

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// benchState is ~300 bytes of instance state and benchData ~150 bytes of
// event data: the sizes of a typical step completion.
var (
	benchState = []byte(`{"input":{"orderId":"ord-000000042","customerId":"cus-000007"},"steps":{"charge":{"status":"completed","output":{"paymentId":"pay-1234567890"}},"reserve":{"status":"running","attempt":1}},"vars":{"amount":4200,"currency":"EUR","vip":false,"note":"` + string(bytes.Repeat([]byte("x"), 60)) + `"}}`)
	benchData  = []byte(`{"step":"reserve","attempt":1,"output":{"reservationId":"res-1234567890","items":[{"sku":"sku-1","qty":2},{"sku":"sku-2","qty":1}]},"ms":12}`)
)

// benchInstances creates n instances, each with one step task, and returns
// them with the ID of their task.
func benchInstances(b *testing.B, s *Store, n int) (ids []string, tasks []int64) {
	b.Helper()
	now := time.Now()
	var batch []*ordostore.Transition
	for i := range n {
		id := fmt.Sprintf("inst-%08d", i)
		ids = append(ids, id)
		batch = append(batch, &ordostore.Transition{
			Create: &ordostore.Instance{
				ID: id, Workflow: "order", Version: 1, Status: ordotype.StatusRunning,
				IdempotencyKey: id, Seq: 1, State: benchState, CreatedAt: now, UpdatedAt: now,
			},
			Events: []*ordostore.Event{{Seq: 1, Type: "WorkflowStarted", Data: benchData, CreatedAt: now}},
			Tasks:  []*ordostore.Task{{Kind: ordotype.TaskStep, Queue: "reserve", StepID: "reserve", Payload: benchData, DueAt: now, CreatedAt: now}},
		})
	}
	for chunk := range slices.Chunk(batch, 500) {
		results, err := s.Apply(context.Background(), chunk)
		require.NoError(b, err)
		for _, res := range results {
			require.NoError(b, res.Err)
			tasks = append(tasks, res.TaskIDs[0])
		}
	}
	return ids, tasks
}

// BenchmarkApply measures group commits of step completions: each
// transition advances one instance (~300 bytes of state), appends 2 events
// (~150 bytes each), deletes the task it completes and inserts the next.
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{1, 16, 128, 1024} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := openTest(b)
			ids, tasks := benchInstances(b, s, size)
			seqs := make([]int64, size)
			for i := range seqs {
				seqs[i] = 1
			}
			batch := make([]*ordostore.Transition, size)
			now := time.Now()

			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for b.Loop() {
				for i := range batch {
					batch[i] = &ordostore.Transition{
						InstanceID:  ids[i],
						ExpectedSeq: seqs[i],
						Events: []*ordostore.Event{
							{Seq: seqs[i] + 1, Type: "StepCompleted", StepID: "reserve", Attempt: 1, Data: benchData, CreatedAt: now},
							{Seq: seqs[i] + 2, Type: "StepScheduled", StepID: "ship", Attempt: 1, Data: benchData, CreatedAt: now},
						},
						Update: &ordostore.InstanceUpdate{
							Status: ordotype.StatusRunning, Seq: seqs[i] + 2, State: benchState, UpdatedAt: now,
						},
						Complete: &ordostore.TaskRef{ID: tasks[i]},
						Tasks: []*ordostore.Task{
							{Kind: ordotype.TaskStep, Queue: "ship", StepID: "ship", Attempt: 1, Payload: benchData, DueAt: now, CreatedAt: now},
						},
					}
				}
				results, err := s.Apply(context.Background(), batch)
				if err != nil {
					b.Fatal(err)
				}
				for i, res := range results {
					if res.Err != nil {
						b.Fatal(res.Err)
					}
					seqs[i] += 2
					tasks[i] = res.TaskIDs[0]
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "transitions/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/transition")
			// CPU time (user+system, all threads) per transition: unlike
			// the elapsed time, it does not depend on what else the machine
			// runs.
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N*size), "cpu-ns/transition")
		})
	}
}

// BenchmarkGetInstance measures reads of an instance's read model from a
// store of 10,000 instances, from one goroutine and from several.
func BenchmarkGetInstance(b *testing.B) {
	s := openTest(b)
	ids, _ := benchInstances(b, s, 10_000)

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.GetInstance(context.Background(), ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
			i += 7919 // a prime: spread the reads
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := s.GetInstance(context.Background(), ids[i%len(ids)]); err != nil {
					b.Error(err)
					return
				}
				i += 7919
			}
		})
	})
}

// BenchmarkClaimTasks measures claims of 16 tasks from a backlog of 10,000
// due step tasks spread over the queues asked for and 10,000 timers due
// later. Each claim's lease has ended by the next one, so every claim finds
// the same backlog.
func BenchmarkClaimTasks(b *testing.B) {
	for _, queues := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("queues=%d", queues), func(b *testing.B) {
			s := openTest(b)
			now := time.Now()
			names := make([]string, queues)
			for i := range names {
				names[i] = fmt.Sprintf("queue-%02d", i)
			}
			inst := &ordostore.Transition{Create: &ordostore.Instance{
				ID: "inst-1", Workflow: "order", Version: 1, Status: ordotype.StatusRunning, CreatedAt: now, UpdatedAt: now,
			}}
			_, err := s.Apply(context.Background(), []*ordostore.Transition{inst})
			require.NoError(b, err)
			for chunk := range 20 {
				tr := &ordostore.Transition{InstanceID: "inst-1", ExpectedSeq: 0}
				for i := range 1000 {
					n := chunk*1000 + i
					task := &ordostore.Task{Kind: ordotype.TaskStep, Queue: names[n%queues], Payload: benchData, DueAt: now.Add(-time.Duration(n) * time.Millisecond), CreatedAt: now}
					if chunk >= 10 {
						task.Kind, task.Queue, task.DueAt = ordotype.TaskTimer, "", now.Add(time.Duration(n)*time.Hour)
					}
					tr.Tasks = append(tr.Tasks, task)
				}
				results, err := s.Apply(context.Background(), []*ordostore.Transition{tr})
				require.NoError(b, err)
				require.NoError(b, results[0].Err)
			}

			params := &ordostore.ClaimTasksParams{
				Owner:  "bench",
				Kinds:  []ordotype.TaskKind{ordotype.TaskStep},
				Queues: names,
				Limit:  16,
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				now = now.Add(time.Second)
				params.Now, params.LeaseUntil = now, now.Add(time.Millisecond)
				tasks, err := s.ClaimTasks(context.Background(), params)
				if err != nil {
					b.Fatal(err)
				}
				if len(tasks) != 16 {
					b.Fatalf("claimed %d tasks, want 16", len(tasks))
				}
			}
			b.ReportMetric(float64(b.N*16)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}

// cpuTime returns the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
