package server

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordostore"
)

const receiveYAML = `workflow: await-card
steps:
  - id: wait
    receive: {message: CardUpdated, correlate: input.orderId}
`

func TestSend(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := t.Context()
	b.deploy(t, "", receiveYAML)
	id := b.start(t, "", "await-card", `{"input":{"orderId":"o-7"}}`)
	require.Eventually(t, func() bool {
		inst, err := b.eng.Get(ctx, id)
		return err == nil && inst.Status == ordo.StatusWaiting
	}, 5*time.Second, 5*time.Millisecond)

	res := b.do(t, request{method: "POST", path: "/api/v1/messages", contentType: "application/json",
		body: `{"name":"CardUpdated","key":"o-7","id":"m-1","payload":{"card":"4242"}}`})
	require.Equal(t, http.StatusOK, res.status, string(res.body))
	var sent ordoclient.SendResult
	res.decode(t, &sent)
	require.Equal(t, ordoclient.SendResult{ID: "m-1", DeliveredTo: []string{id}}, sent)

	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	inst, err := b.eng.Wait(wctx, id)
	require.NoError(t, err)
	require.Equal(t, ordo.StatusCompleted, inst.Status)
	require.JSONEq(t, `{"card":"4242"}`, string(inst.Output))

	got, err := b.client.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "m-1", got.Steps[0].MessageID)
	require.Equal(t, "o-7", got.Steps[0].Key)

	// Again: a duplicate, kept nowhere.
	dup, err := b.client.Send(ctx, &ordoclient.SendRequest{Name: "CardUpdated", Key: "o-7", ID: "m-1"})
	require.NoError(t, err)
	require.True(t, dup.Duplicate)

	// Nobody waits for this key: kept (202).
	res = b.do(t, request{method: "POST", path: "/api/v1/messages", contentType: "application/json",
		body: `{"name":"CardUpdated","key":"o-8","ttl":"P7D"}`})
	require.Equal(t, http.StatusAccepted, res.status, string(res.body))
	res.decode(t, &sent)
	require.NotEmpty(t, sent.ID)
	require.Empty(t, sent.DeliveredTo)
}

func TestSend_BadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, tc := range []struct {
		body string
		code ordoclient.Code
	}{
		{`{"key":"k"}`, ordoclient.CodeInvalidParameter},
		{`{"name":"M","ttl":"soon"}`, ordoclient.CodeInvalidParameter},
		{`{"name":"M","ttl":"-1h"}`, ordoclient.CodeInvalidParameter},
		{`{"name":7}`, ordoclient.CodeWrongType},
		{`{"name":"M","extra":1}`, ordoclient.CodeUnknownField},
		{`{"name":"M",`, ordoclient.CodeMalformedJSON},
	} {
		res := b.do(t, request{method: "POST", path: "/api/v1/messages", contentType: "application/json", body: tc.body})
		require.Equal(t, http.StatusBadRequest, res.status, tc.body)
		require.Equal(t, tc.code, res.errorBody(t).Code, tc.body)
	}
	msgs, err := b.eng.Store().ListMessages(t.Context(), &ordostore.ListMessagesParams{Name: "M", Now: time.Now()})
	require.NoError(t, err)
	require.Empty(t, msgs, "nothing was kept")
}
