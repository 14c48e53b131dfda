package ordostoretest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

func exerciseClose(ctx context.Context, t *testing.T, newStore func(t *testing.T) ordostore.Store) {
	t.Run("CloseTwice", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		require.NoError(t, s.Close())
		require.NoError(t, s.Close())
	})

	t.Run("UseAfterClose", func(t *testing.T) {
		t.Parallel()
		s := newStore(t)

		create(ctx, t, s, newInstance("inst-1", "order"), newTask("inst-1", ordotype.TaskStep, "q", t0))
		require.NoError(t, s.Close())

		calls := map[string]func() error{
			"PutDefinition": func() error {
				_, _, err := s.PutDefinition(ctx, &ordostore.PutDefinitionParams{Name: "order", Hash: "h", Source: []byte(`{}`), Now: t0})
				return err
			},
			"GetDefinition": func() error {
				_, err := s.GetDefinition(ctx, "order", 0)
				return err
			},
			"ListDefinitions": func() error {
				_, err := s.ListDefinitions(ctx)
				return err
			},
			"Apply": func() error {
				_, err := s.Apply(ctx, []*ordostore.Transition{advanceOf("inst-1", 1, 1, `{}`)})
				return err
			},
			"GetInstance": func() error {
				_, err := s.GetInstance(ctx, "inst-1")
				return err
			},
			"GetInstanceByKey": func() error {
				_, err := s.GetInstanceByKey(ctx, "order", "k")
				return err
			},
			"ListInstances": func() error {
				_, err := s.ListInstances(ctx, &ordostore.ListInstancesParams{})
				return err
			},
			"ListEvents": func() error {
				_, err := s.ListEvents(ctx, &ordostore.ListEventsParams{InstanceID: "inst-1"})
				return err
			},
			"ClaimTasks": func() error {
				_, err := s.ClaimTasks(ctx, &ordostore.ClaimTasksParams{
					Owner: "worker", Kinds: allKinds, Now: t0, LeaseUntil: at(time.Minute), Limit: 1,
				})
				return err
			},
			"NextTaskDue": func() error {
				_, _, err := s.NextTaskDue(ctx, &ordostore.NextTaskDueParams{Kinds: allKinds})
				return err
			},
			"ReleaseLeases": func() error {
				_, err := s.ReleaseLeases(ctx, "")
				return err
			},
			"CountTasks": func() error {
				_, err := s.CountTasks(ctx, &ordostore.CountTasksParams{})
				return err
			},
			"CountInstances": func() error {
				_, err := s.CountInstances(ctx, nil)
				return err
			},
			"CountQueues": func() error {
				_, err := s.CountQueues(ctx, nil)
				return err
			},
		}
		for name, call := range calls {
			require.ErrorIs(t, call(), ordotype.ErrClosed, name)
		}
	})
}
