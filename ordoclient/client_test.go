package ordoclient_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordotype"
)

func TestClient_Errors(t *testing.T) {
	t.Parallel()

	t.Run("APIError", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			require.Equal(t, "Bearer tok", r.Header.Get("Authorization"))
			require.Equal(t, "/api/v1/instances/a%2Fb", r.URL.EscapedPath())
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"error":{"code":"instance_not_found","number":1203,"message":"no instance \"a/b\""}}`))
		}))
		t.Cleanup(srv.Close)
		c, err := ordoclient.New(srv.URL, &ordoclient.Options{Token: "tok"})
		require.NoError(t, err)
		_, err = c.Get(context.Background(), "a/b")
		var e *ordoclient.Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, &ordoclient.Error{Status: 404, Code: ordoclient.CodeInstanceNotFound, Number: 1203, Message: `no instance "a/b"`}, e)
		require.ErrorIs(t, err, ordotype.ErrNotFound)
		require.NotErrorIs(t, err, ordotype.ErrInvalid)
		require.NotErrorIs(t, err, ordoclient.ErrUnauthorized)
		require.Equal(t, `no instance "a/b" (instance_not_found)`, err.Error())
	})

	t.Run("NotJSON", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "bad gateway", http.StatusBadGateway)
		}))
		t.Cleanup(srv.Close)
		c, err := ordoclient.New(srv.URL, nil)
		require.NoError(t, err)
		_, err = c.Definitions(context.Background())
		var e *ordoclient.Error
		require.ErrorAs(t, err, &e)
		require.Equal(t, 502, e.Status)
		require.Empty(t, e.Code)
		require.Equal(t, "bad gateway (HTTP 502)", err.Error())
	})

	t.Run("BadURL", func(t *testing.T) {
		t.Parallel()
		for _, u := range []string{"", "localhost:7070", "ftp://x", "http://"} {
			_, err := ordoclient.New(u, nil)
			require.Error(t, err, u)
		}
	})
}

func TestCodes(t *testing.T) {
	t.Parallel()
	for _, c := range ordoclient.Codes {
		info, ok := c.Code.Info()
		require.True(t, ok)
		require.Equal(t, c, info)
		require.NotEmpty(t, c.Description)
	}
	_, ok := ordoclient.Code("nope").Info()
	require.False(t, ok)
}
