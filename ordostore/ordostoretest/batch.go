package ordostoretest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordostore"
)

// exerciseGetInstances checks ordostore.InstancesGetter on stores that
// implement it.
func exerciseGetInstances(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	probe := newStore(t)
	if _, ok := probe.(ordostore.InstancesGetter); !ok {
		t.Skip("the store does not implement ordostore.InstancesGetter")
	}
	setup := func(t *testing.T) ordostore.InstancesGetter {
		s := newStore(t)
		var batch []*ordostore.Transition
		for i := range 5 {
			inst := newInstance(fmt.Sprintf("inst-%d", i), "order")
			inst.BusinessKey = fmt.Sprintf("b%d", i)
			batch = append(batch, createOf(inst))
		}
		applyOK(ctx, t, s, batch...)
		return s.(ordostore.InstancesGetter)
	}

	t.Run("ReturnsThoseThatExist", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		insts, err := s.GetInstances(ctx, []string{"inst-3", "nope", "inst-0", "inst-4"})
		require.NoError(t, err)
		got := instanceIDs(insts)
		slices.Sort(got)
		require.Equal(t, []string{"inst-0", "inst-3", "inst-4"}, got)
		for _, inst := range insts {
			require.Equal(t, "b"+inst.ID[len("inst-"):], inst.BusinessKey, "every field is read")
			require.JSONEq(t, string(newInstance(inst.ID, "order").State), string(inst.State))
			require.Equal(t, int64(1), inst.Seq)
		}
	})

	t.Run("NoIDs", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		insts, err := s.GetInstances(ctx, nil)
		require.NoError(t, err)
		require.NotNil(t, insts)
		require.Empty(t, insts)
	})

	t.Run("ManyIDs", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ids := make([]string, 5000)
		for i := range ids {
			ids[i] = fmt.Sprintf("inst-%d", i)
		}
		insts, err := s.GetInstances(ctx, ids)
		require.NoError(t, err)
		require.Len(t, insts, 5)
	})
}
