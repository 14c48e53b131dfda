package ordostoretest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

func exerciseDefinitions(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	put := func(t *testing.T, s ordostore.Store, name, hash string, now time.Time) (*ordostore.Definition, bool) {
		t.Helper()
		def, created, err := s.PutDefinition(ctx, &ordostore.PutDefinitionParams{
			Name:   name,
			Hash:   hash,
			Source: []byte(`{"workflow":"` + name + `","hash":"` + hash + `"}`),
			Now:    now,
		})
		require.NoError(t, err)
		return def, created
	}
	requireDefinition := func(t *testing.T, name string, version int, hash string, createdAt time.Time, got *ordostore.Definition) {
		t.Helper()
		require.Equal(t, name, got.Name)
		require.Equal(t, version, got.Version)
		require.Equal(t, hash, got.Hash)
		require.Equal(t, `{"workflow":"`+name+`","hash":"`+hash+`"}`, string(got.Source))
		require.True(t, createdAt.Equal(got.CreatedAt), "CreatedAt is %s, want %s", got.CreatedAt, createdAt)
	}

	t.Run("Versioning", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		def, created := put(t, s, "order", "h1", at(0))
		require.True(t, created)
		requireDefinition(t, "order", 1, "h1", at(0), def)

		def, created = put(t, s, "order", "h2", at(time.Second))
		require.True(t, created)
		requireDefinition(t, "order", 2, "h2", at(time.Second), def)

		// Only the latest version counts: going back to h1 is a new version.
		def, created = put(t, s, "order", "h1", at(2*time.Second))
		require.True(t, created)
		requireDefinition(t, "order", 3, "h1", at(2*time.Second), def)

		// Versions are per name.
		def, created = put(t, s, "refund", "h1", at(3*time.Second))
		require.True(t, created)
		requireDefinition(t, "refund", 1, "h1", at(3*time.Second), def)
	})

	t.Run("SameHashIsNotANewVersion", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		put(t, s, "order", "h1", at(0))
		put(t, s, "order", "h2", at(time.Second))
		def, created := put(t, s, "order", "h2", at(time.Hour))
		require.False(t, created)
		requireDefinition(t, "order", 2, "h2", at(time.Second), def)

		got, err := s.GetDefinition(ctx, "order", 0)
		require.NoError(t, err)
		requireDefinition(t, "order", 2, "h2", at(time.Second), got)
	})

	t.Run("Get", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		put(t, s, "order", "h1", at(0))
		put(t, s, "order", "h2", at(time.Second))

		latest, err := s.GetDefinition(ctx, "order", 0)
		require.NoError(t, err)
		requireDefinition(t, "order", 2, "h2", at(time.Second), latest)

		first, err := s.GetDefinition(ctx, "order", 1)
		require.NoError(t, err)
		requireDefinition(t, "order", 1, "h1", at(0), first)
	})

	t.Run("GetNotFound", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		_, err := s.GetDefinition(ctx, "order", 0)
		require.ErrorIs(t, err, ordotype.ErrNotFound)

		put(t, s, "order", "h1", at(0))
		_, err = s.GetDefinition(ctx, "order", 2)
		require.ErrorIs(t, err, ordotype.ErrNotFound)
		_, err = s.GetDefinition(ctx, "other", 1)
		require.ErrorIs(t, err, ordotype.ErrNotFound)
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		defs, err := s.ListDefinitions(ctx)
		require.NoError(t, err)
		require.Empty(t, defs)

		put(t, s, "shipping", "h1", at(0))
		put(t, s, "billing", "h1", at(0))
		put(t, s, "billing", "h2", at(time.Second))
		put(t, s, "order", "h1", at(0))

		defs, err = s.ListDefinitions(ctx)
		require.NoError(t, err)
		require.Len(t, defs, 3)
		requireDefinition(t, "billing", 2, "h2", at(time.Second), defs[0])
		requireDefinition(t, "order", 1, "h1", at(0), defs[1])
		requireDefinition(t, "shipping", 1, "h1", at(0), defs[2])
	})
}
