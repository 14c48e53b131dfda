package server

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
)

// TestClient runs package ordoclient against a real server.
func TestClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, &Options{Tokens: map[string]Role{"admin": RoleAdmin, "reader": RoleReader}})
	c := b.client

	dep, err := c.Deploy(ctx, []byte(quickYAML), "")
	require.NoError(t, err)
	require.True(t, dep.Created)
	dep, err = c.Deploy(ctx, []byte(quickYAML), "application/yaml")
	require.NoError(t, err)
	require.False(t, dep.Created)
	_, err = c.Deploy(ctx, []byte(slowYAML), "application/yaml")
	require.NoError(t, err)

	_, err = c.Deploy(ctx, []byte("workflow: x\nsteps:\n  - id: a\n    after: [b]\n    timer: {duration: 1s}\n"), "")
	var apiErr *ordoclient.Error
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, ordoclient.CodeInvalidDefinition, apiErr.Code)
	require.ErrorIs(t, err, ordo.ErrInvalid)
	require.Equal(t, 4, apiErr.Problems()[0].Line)
	require.Contains(t, apiErr.Problems()[0].String(), "line 4:")

	defs, err := c.Definitions(ctx)
	require.NoError(t, err)
	require.Len(t, defs, 2)
	def, err := c.Definition(ctx, "quick", 1)
	require.NoError(t, err)
	require.Equal(t, dep.Hash, def.Hash)
	_, err = c.Definition(ctx, "nope", 0)
	require.ErrorIs(t, err, ordo.ErrNotFound)

	res, err := c.Start(ctx, "quick", &ordoclient.StartRequest{Input: json.RawMessage(`{"n":1}`), IdempotencyKey: "k"})
	require.NoError(t, err)
	again, err := c.Start(ctx, "quick", &ordoclient.StartRequest{IdempotencyKey: "k"})
	require.NoError(t, err)
	require.Equal(t, ordoclient.StartResult{ID: res.ID, Existing: true}, *again)
	inst := b.waitStatus(t, res.ID, ordo.StatusCompleted)
	require.Equal(t, "k", inst.IdempotencyKey)

	slow, err := c.Start(ctx, "slow", &ordoclient.StartRequest{Input: json.RawMessage(`{"orderId":"o-1"}`)})
	require.NoError(t, err)
	list, err := c.List(ctx, &ordoclient.ListParams{Statuses: []ordo.Status{ordo.StatusCompleted}, Limit: 10})
	require.NoError(t, err)
	require.Len(t, list.Instances, 1)
	require.Equal(t, res.ID, list.Instances[0].ID)
	list, err = c.List(ctx, &ordoclient.ListParams{BusinessKey: "o-1"})
	require.NoError(t, err)
	require.Len(t, list.Instances, 1)

	events, err := c.Journal(ctx, res.ID)
	require.NoError(t, err)
	require.Equal(t, "workflow.started", events[0].Type)

	_, err = c.Resubmit(ctx, slow.ID, nil)
	require.ErrorIs(t, err, ordo.ErrInvalid)
	require.True(t, ordoclient.IsCode(err, ordoclient.CodeInvalidState))
	cancelled, err := c.Cancel(ctx, slow.ID, &ordoclient.CancelRequest{Reason: "test"})
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCancelled, cancelled.Status)
	_, err = c.Get(ctx, "nope")
	require.ErrorIs(t, err, ordo.ErrNotFound)
	require.NoError(t, c.Ready(ctx))

	reader, err := ordoclient.New(b.base+"/", &ordoclient.Options{Token: "reader"})
	require.NoError(t, err)
	_, err = reader.Cancel(ctx, res.ID, nil)
	require.ErrorIs(t, err, ordoclient.ErrUnauthorized)
	require.True(t, ordoclient.IsCode(err, ordoclient.CodeForbidden))
	anon, err := ordoclient.New(b.base, nil)
	require.NoError(t, err)
	_, err = anon.Definitions(ctx)
	require.ErrorIs(t, err, ordoclient.ErrUnauthorized)

	_, err = ordoclient.New("127.0.0.1:7070", nil)
	require.ErrorContains(t, err, "http://host:port")
}
