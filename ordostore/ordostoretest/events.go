package ordostoretest

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordostore"
)

func exerciseEvents(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	t.Run("ReadsBackEveryField", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		inst := newInstance("inst-1", "order")
		inst.Seq = 2
		tr := createOf(inst)
		tr.Events[0].StepID = ""
		tr.Events[0].Attempt = 0
		tr.Events[1].Attempt = 3
		applyOK(ctx, t, s, tr)
		requireEvents(t, tr.Events, listEvents(ctx, t, s, "inst-1"))
	})

	t.Run("AfterSeqAndLimit", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		inst := newInstance("inst-1", "order")
		inst.Seq = 5
		create(ctx, t, s, inst)
		create(ctx, t, s, newInstance("inst-2", "order"))

		list := func(afterSeq int64, limit int) []int64 {
			t.Helper()
			events, err := s.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: "inst-1", AfterSeq: afterSeq, Limit: limit})
			require.NoError(t, err)
			for _, ev := range events {
				require.Equal(t, "inst-1", ev.InstanceID)
			}
			return seqs(events)
		}
		require.Equal(t, []int64{1, 2, 3, 4, 5}, list(0, 0))
		require.Equal(t, []int64{3, 4, 5}, list(2, 0))
		require.Equal(t, []int64{1, 2}, list(0, 2))
		require.Equal(t, []int64{2, 3}, list(1, 2))
		require.Equal(t, []int64{5}, list(4, 10))
		require.Empty(t, list(5, 0))
	})

	t.Run("UnknownInstanceIsEmpty", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		events, err := s.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: "nope"})
		require.NoError(t, err)
		require.Empty(t, events)
	})

	t.Run("JournalGrowsWithEachTransition", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"))
		for seq := int64(1); seq < 10; seq += 3 {
			applyOK(ctx, t, s, advanceOf("inst-1", seq, 3, `{}`))
		}
		events := listEvents(ctx, t, s, "inst-1")
		require.Equal(t, []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, seqs(events))
		require.Equal(t, "Started", events[0].Type)
		require.Equal(t, "StepCompleted", events[9].Type)
	})
}
