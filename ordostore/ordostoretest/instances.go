package ordostoretest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

func exerciseInstances(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	// setup creates inst-00 … inst-09, created one minute apart in that
	// order: even ones are orders, odd ones refunds; statuses cycle through
	// running, waiting, completed; every third has business key "vip".
	setup := func(t *testing.T) ordostore.Store {
		t.Helper()
		s := newStore(t)
		var batch []*ordostore.Transition
		for i := range 10 {
			inst := newInstance(fmt.Sprintf("inst-%02d", i), "order")
			if i%2 == 1 {
				inst.Workflow = "refund"
			}
			inst.Status = []ordotype.Status{ordotype.StatusRunning, ordotype.StatusWaiting, ordotype.StatusCompleted}[i%3]
			if i%3 == 0 {
				inst.BusinessKey = "vip"
			}
			inst.CreatedAt = at(time.Duration(i) * time.Minute)
			batch = append(batch, createOf(inst))
		}
		applyOK(ctx, t, s, batch...)
		return s
	}
	list := func(t *testing.T, s ordostore.Store, params ordostore.ListInstancesParams) []string {
		t.Helper()
		insts, err := s.ListInstances(ctx, &params)
		require.NoError(t, err)
		return instanceIDs(insts)
	}
	ids := func(ns ...int) []string {
		out := make([]string, 0, len(ns))
		for _, n := range ns {
			out = append(out, fmt.Sprintf("inst-%02d", n))
		}
		return out
	}

	t.Run("NewestFirst", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		require.Equal(t, ids(9, 8, 7, 6, 5, 4, 3, 2, 1, 0), list(t, s, ordostore.ListInstancesParams{}))
	})

	t.Run("OrderIsByID", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		// IDs are time-sortable, so their order is the newest-first order,
		// whatever CreatedAt says.
		a, b := newInstance("inst-a", "order"), newInstance("inst-b", "order")
		a.CreatedAt, b.CreatedAt = at(time.Hour), t0
		applyOK(ctx, t, s, createOf(a), createOf(b))
		require.Equal(t, []string{"inst-b", "inst-a"}, list(t, s, ordostore.ListInstancesParams{}))
	})

	t.Run("ReadsBackEveryField", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		inst := newInstance("inst-1", "order")
		inst.IdempotencyKey, inst.BusinessKey, inst.ParentID = "k", "b", "p"
		inst.FinishedAt = at(time.Hour)
		create(ctx, t, s, inst)
		insts, err := s.ListInstances(ctx, &ordostore.ListInstancesParams{})
		require.NoError(t, err)
		require.Len(t, insts, 1)
		requireInstance(t, inst, insts[0])
	})

	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		require.Empty(t, list(t, s, ordostore.ListInstancesParams{}))
	})

	t.Run("Workflow", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		require.Equal(t, ids(8, 6, 4, 2, 0), list(t, s, ordostore.ListInstancesParams{Workflow: "order"}))
		require.Empty(t, list(t, s, ordostore.ListInstancesParams{Workflow: "nope"}))
	})

	t.Run("Statuses", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		require.Equal(t, ids(7, 4, 1), list(t, s, ordostore.ListInstancesParams{
			Statuses: []ordotype.Status{ordotype.StatusWaiting},
		}))
		require.Equal(t, ids(8, 7, 5, 4, 2, 1), list(t, s, ordostore.ListInstancesParams{
			Statuses: []ordotype.Status{ordotype.StatusWaiting, ordotype.StatusCompleted},
		}))
		require.Empty(t, list(t, s, ordostore.ListInstancesParams{
			Statuses: []ordotype.Status{ordotype.StatusCancelled},
		}))
	})

	t.Run("BusinessKey", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		require.Equal(t, ids(9, 6, 3, 0), list(t, s, ordostore.ListInstancesParams{BusinessKey: "vip"}))
	})

	t.Run("CreatedAfterAndBeforeAreExclusive", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		require.Equal(t, ids(9, 8, 7), list(t, s, ordostore.ListInstancesParams{CreatedAfter: at(6 * time.Minute)}))
		require.Equal(t, ids(1, 0), list(t, s, ordostore.ListInstancesParams{CreatedBefore: at(2 * time.Minute)}))
		require.Equal(t, ids(5, 4), list(t, s, ordostore.ListInstancesParams{
			CreatedAfter:  at(3 * time.Minute),
			CreatedBefore: at(6 * time.Minute),
		}))
	})

	t.Run("TimeFiltersFarAway", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		far := time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)
		long := time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)
		require.Empty(t, list(t, s, ordostore.ListInstancesParams{CreatedAfter: far}), "nothing was created after 2999")
		require.Empty(t, list(t, s, ordostore.ListInstancesParams{CreatedBefore: long}), "nothing was created before 1000")
		require.Len(t, list(t, s, ordostore.ListInstancesParams{CreatedAfter: long, CreatedBefore: far}), 10)
	})

	t.Run("FiltersCombine", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		require.Equal(t, ids(6, 0), list(t, s, ordostore.ListInstancesParams{Workflow: "order", BusinessKey: "vip"}))
		require.Equal(t, ids(4), list(t, s, ordostore.ListInstancesParams{
			Workflow:     "order",
			Statuses:     []ordotype.Status{ordotype.StatusWaiting},
			CreatedAfter: at(time.Minute),
		}))
	})

	t.Run("BeforeIDPages", func(t *testing.T) {
		t.Parallel()
		s := setup(t)

		var pages [][]string
		params := ordostore.ListInstancesParams{Limit: 4}
		for {
			page := list(t, s, params)
			if len(page) == 0 {
				break
			}
			pages = append(pages, page)
			params.BeforeID = page[len(page)-1]
		}
		require.Equal(t, [][]string{ids(9, 8, 7, 6), ids(5, 4, 3, 2), ids(1, 0)}, pages)

		// Paging combines with filters.
		require.Equal(t, ids(4, 2), list(t, s, ordostore.ListInstancesParams{Workflow: "order", BeforeID: "inst-06", Limit: 2}))
	})

	t.Run("DefaultLimitIs100", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		var batch []*ordostore.Transition
		for i := range 120 {
			batch = append(batch, createOf(newInstance(fmt.Sprintf("inst-%03d", i), "order")))
		}
		applyOK(ctx, t, s, batch...)
		got := list(t, s, ordostore.ListInstancesParams{})
		require.Len(t, got, 100)
		require.Equal(t, "inst-119", got[0])
		require.True(t, slices.IsSortedFunc(got, func(a, b string) int { return strings.Compare(b, a) }))
	})
}
