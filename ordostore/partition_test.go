package ordostore_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordostore"
)

func TestPartition(t *testing.T) {
	t.Parallel()

	t.Run("StableValues", func(t *testing.T) {
		t.Parallel()
		// Pinned: brokers' partitions depend on these, across releases.
		id := "0190b6a2-5c1e-7cc1-9a4e-8f1d2b3c4d5e"
		require.Equal(t, 0, ordostore.Partition(id, 1))
		require.Equal(t, 0, ordostore.Partition(id, 0))
		require.Equal(t, 0, ordostore.Partition(id, -3))
		for _, n := range []int{2, 3, 8, 16, 64, 1000} {
			p := ordostore.Partition(id, n)
			require.GreaterOrEqual(t, p, 0)
			require.Less(t, p, n)
			require.Equal(t, p, ordostore.Partition(id, n), "not a function of the ID")
		}
		// FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c.
		require.Equal(t, int(uint64(0xaf63dc4c8601ec8c)%16), ordostore.Partition("a", 16))
	})

	t.Run("SpreadsIDs", func(t *testing.T) {
		t.Parallel()
		const n, ids = 8, 8000
		counts := make([]int, n)
		for i := range ids {
			counts[ordostore.Partition(fmt.Sprintf("instance-%d", i), n)]++
		}
		for p, c := range counts {
			require.InDelta(t, ids/n, c, ids/n/4, "partition %d holds %d of %d", p, c, ids)
		}
	})
}
