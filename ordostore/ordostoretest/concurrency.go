package ordostoretest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

func exerciseConcurrency(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	t.Run("IdempotentCreates", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		const (
			goroutines = 16
			creates    = 100
			keys       = 20
		)
		var (
			mu       sync.Mutex
			errs     []error
			created  = map[string]string{} // key → instance ID
			existing = map[string][]string{}
		)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range creates {
					inst := newInstance(fmt.Sprintf("inst-%02d-%03d", g, i), "order")
					inst.IdempotencyKey = fmt.Sprintf("key-%02d", (g+i)%keys)
					results, err := s.Apply(ctx, []*ordostore.Transition{createOf(inst)})
					mu.Lock()
					switch {
					case err != nil:
						errs = append(errs, err)
					case results[0].Err == nil:
						if first, ok := created[inst.IdempotencyKey]; ok {
							errs = append(errs, fmt.Errorf("key %s created twice: %s and %s", inst.IdempotencyKey, first, inst.ID))
						}
						created[inst.IdempotencyKey] = inst.ID
					case errors.Is(results[0].Err, ordotype.ErrAlreadyExists):
						existing[inst.IdempotencyKey] = append(existing[inst.IdempotencyKey], results[0].ExistingID)
					default:
						errs = append(errs, results[0].Err)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		require.Len(t, created, keys)

		total := 0
		for key, ids := range existing {
			total += len(ids)
			for _, id := range ids {
				require.Equal(t, created[key], id, "ExistingID for key %s", key)
			}
		}
		require.Equal(t, goroutines*creates-keys, total)

		insts, err := s.ListInstances(ctx, &ordostore.ListInstancesParams{Limit: goroutines * creates})
		require.NoError(t, err)
		require.Len(t, insts, keys)
		for _, inst := range insts {
			require.Equal(t, created[inst.IdempotencyKey], inst.ID)
		}
	})

	t.Run("RacingAdvancesWithRetries", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		const (
			goroutines = 8
			steps      = 25
		)
		create(ctx, t, s, newInstance("inst-1", "order"))

		var (
			mu   sync.Mutex
			errs []error
			wg   sync.WaitGroup
		)
		fail := func(err error) {
			mu.Lock()
			defer mu.Unlock()
			errs = append(errs, err)
		}
		for g := range goroutines {
			wg.Go(func() {
				for i := 0; i < steps; {
					inst, err := s.GetInstance(ctx, "inst-1")
					if err != nil {
						fail(err)
						return
					}
					tr := advanceOf("inst-1", inst.Seq, 1, fmt.Sprintf(`{"by":"%d-%d"}`, g, i))
					tr.Events[0].Data = []byte(fmt.Sprintf(`{"by":"%d-%d"}`, g, i))
					results, err := s.Apply(ctx, []*ordostore.Transition{tr})
					switch {
					case err != nil:
						fail(err)
						return
					case errors.Is(results[0].Err, ordotype.ErrConflict):
						continue // another goroutine advanced it first: read again
					case results[0].Err != nil:
						fail(results[0].Err)
						return
					}
					i++
				}
			})
		}
		wg.Wait()
		require.NoError(t, errors.Join(errs...))

		const last = 1 + goroutines*steps
		require.Equal(t, int64(last), getInstance(ctx, t, s, "inst-1").Seq)
		events := listEvents(ctx, t, s, "inst-1")
		require.Len(t, events, last)
		seen := map[string]bool{}
		for i, ev := range events {
			require.Equal(t, int64(i+1), ev.Seq)
			if i == 0 {
				continue
			}
			require.False(t, seen[string(ev.Data)], "event %s written twice", ev.Data)
			seen[string(ev.Data)] = true
		}
		require.Len(t, seen, goroutines*steps)
	})
}
