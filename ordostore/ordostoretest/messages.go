package ordostoretest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

func exerciseMessages(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	msg := func(name, key, id string, expires time.Duration) *ordostore.Message {
		return &ordostore.Message{
			Name: name, Key: key, MessageID: id, Payload: []byte(`{"id":"` + id + `"}`),
			CreatedAt: t0, ExpiresAt: at(expires),
		}
	}

	t.Run("PutAndList", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		m1, err := s.PutMessage(ctx, msg("card", "o-1", "m1", time.Hour))
		require.NoError(t, err)
		require.NotZero(t, m1.ID)
		m2, err := s.PutMessage(ctx, msg("card", "o-1", "m2", time.Hour))
		require.NoError(t, err)
		_, err = s.PutMessage(ctx, msg("card", "o-2", "m3", time.Hour))
		require.NoError(t, err)
		_, err = s.PutMessage(ctx, msg("other", "o-1", "m4", time.Hour))
		require.NoError(t, err)

		got, err := s.ListMessages(ctx, &ordostore.ListMessagesParams{Name: "card", Key: "o-1", Now: t0})
		require.NoError(t, err)
		require.Len(t, got, 2, "only the messages of the name and key")
		require.Equal(t, []int64{m1.ID, m2.ID}, []int64{got[0].ID, got[1].ID}, "oldest first")
		require.Equal(t, "m1", got[0].MessageID)
		require.JSONEq(t, `{"id":"m1"}`, string(got[0].Payload))
		require.True(t, got[0].ExpiresAt.Equal(at(time.Hour)))
		require.Empty(t, got[0].ConsumedBy)

		later, err := s.ListMessages(ctx, &ordostore.ListMessagesParams{Name: "card", Key: "o-1", Now: at(2 * time.Hour)})
		require.NoError(t, err)
		require.Empty(t, later, "expired messages are not listed")
	})

	t.Run("Duplicate", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		_, err := s.PutMessage(ctx, msg("card", "o-1", "m1", time.Hour))
		require.NoError(t, err)
		_, err = s.PutMessage(ctx, msg("card", "o-9", "m1", time.Hour))
		require.ErrorIs(t, err, ordotype.ErrAlreadyExists)
		_, err = s.PutMessage(ctx, msg("other", "o-1", "m1", time.Hour))
		require.NoError(t, err, "message IDs are per name")
		_, err = s.PutMessage(ctx, &ordostore.Message{Name: "card", CreatedAt: t0, ExpiresAt: at(time.Hour)})
		require.ErrorIs(t, err, ordotype.ErrInvalid)
	})

	t.Run("ConsumeOnce", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		create(ctx, t, s, newInstance("i-1", "wf"))
		create(ctx, t, s, newInstance("i-2", "wf"))
		m, err := s.PutMessage(ctx, msg("card", "k", "m1", time.Hour))
		require.NoError(t, err)

		// Two transitions of one batch, and one of a later batch, race for
		// the message: only the first holds.
		a := advanceOf("i-1", 1, 1, `{"a":1}`)
		a.Consume = &ordostore.ConsumeRef{ID: m.ID, By: "i-1"}
		b := advanceOf("i-2", 1, 1, `{"b":1}`)
		b.Consume = &ordostore.ConsumeRef{ID: m.ID, By: "i-2"}
		res := apply(ctx, t, s, a, b)
		require.NoError(t, res[0].Err)
		require.ErrorIs(t, res[1].Err, ordotype.ErrDuplicate)
		require.Equal(t, int64(1), getInstance(ctx, t, s, "i-2").Seq, "the losing transition wrote nothing")

		c := advanceOf("i-2", 1, 1, `{"c":1}`)
		c.Consume = &ordostore.ConsumeRef{ID: m.ID, By: "i-2"}
		res = apply(ctx, t, s, c)
		require.ErrorIs(t, res[0].Err, ordotype.ErrDuplicate)

		got, err := s.ListMessages(ctx, &ordostore.ListMessagesParams{Name: "card", Key: "k", Now: t0})
		require.NoError(t, err)
		require.Empty(t, got, "a consumed message is not listed")
		_, err = s.PutMessage(ctx, msg("card", "k", "m1", time.Hour))
		require.ErrorIs(t, err, ordotype.ErrAlreadyExists, "a consumed message still guards against its duplicates")

		// A transition that fails its own check does not consume.
		m2, err := s.PutMessage(ctx, msg("card", "k", "m2", time.Hour))
		require.NoError(t, err)
		d := advanceOf("i-2", 7, 1, `{"d":1}`)
		d.Consume = &ordostore.ConsumeRef{ID: m2.ID, By: "i-2"}
		res = apply(ctx, t, s, d)
		require.ErrorIs(t, res[0].Err, ordotype.ErrConflict)
		got, err = s.ListMessages(ctx, &ordostore.ListMessagesParams{Name: "card", Key: "k", Now: t0})
		require.NoError(t, err)
		require.Len(t, got, 1)

		e := createOf(newInstance("i-3", "wf"))
		e.Consume = &ordostore.ConsumeRef{ID: m2.ID, By: "i-3"}
		res = apply(ctx, t, s, e)
		require.ErrorIs(t, res[0].Err, ordotype.ErrInvalid, "a create cannot consume")
	})

	t.Run("Expire", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		create(ctx, t, s, newInstance("i-1", "wf"))
		for i := range 5 {
			_, err := s.PutMessage(ctx, msg("card", "k", fmt.Sprintf("m%d", i), time.Duration(i+1)*time.Minute))
			require.NoError(t, err)
		}
		list, err := s.ListMessages(ctx, &ordostore.ListMessagesParams{Name: "card", Key: "k", Now: t0})
		require.NoError(t, err)
		tr := advanceOf("i-1", 1, 1, `{}`)
		tr.Consume = &ordostore.ConsumeRef{ID: list[0].ID, By: "i-1"}
		applyOK(ctx, t, s, tr)

		dropped, deleted, err := s.ExpireMessages(ctx, at(3*time.Minute), 100)
		require.NoError(t, err)
		require.Equal(t, 3, deleted, "m0, m1 and m2 expired")
		require.Len(t, dropped, 2, "m0 was consumed; m1 and m2 are dropped undelivered")
		require.ElementsMatch(t, []string{"m1", "m2"}, []string{dropped[0].MessageID, dropped[1].MessageID})

		_, deleted, err = s.ExpireMessages(ctx, at(time.Hour), 1)
		require.NoError(t, err)
		require.Equal(t, 1, deleted, "limit")
		_, err = s.PutMessage(ctx, msg("card", "k", "m0", time.Hour))
		require.NoError(t, err, "an expired message no longer guards against duplicates")
	})

	t.Run("Slots", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)
		acquire := func(group, holder string, limit int) bool {
			ok, err := s.AcquireSlot(ctx, &ordostore.AcquireSlotParams{Group: group, Holder: holder, Limit: limit, Now: t0})
			require.NoError(t, err)
			return ok
		}
		require.True(t, acquire("g", "a", 1))
		require.True(t, acquire("g", "a", 1), "a holder keeps its slot")
		require.False(t, acquire("g", "b", 1))
		require.True(t, acquire("h", "b", 1), "groups are apart")
		require.True(t, acquire("g2", "a", 2))
		require.True(t, acquire("g2", "b", 2))
		require.False(t, acquire("g2", "c", 2))
		require.NoError(t, s.ReleaseSlot(ctx, "g", "a"))
		require.NoError(t, s.ReleaseSlot(ctx, "g", "a"), "releasing twice is fine")
		require.True(t, acquire("g", "b", 1))
		_, err := s.AcquireSlot(ctx, &ordostore.AcquireSlotParams{Group: "g", Holder: "x", Limit: 0})
		require.ErrorIs(t, err, ordotype.ErrInvalid)

		// Racing holders never exceed the limit.
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := range 16 {
			wg.Go(func() {
				ok, err := s.AcquireSlot(ctx, &ordostore.AcquireSlotParams{Group: "race", Holder: fmt.Sprintf("h%d", i), Limit: 3, Now: t0})
				if err == nil && ok {
					mu.Lock()
					won++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Equal(t, 3, won)
	})
}
