package server

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordoclient"
)

// TestServer_Auth checks every kind of credential against every class of
// route: public, read, operate, admin.
func TestServer_Auth(t *testing.T) {
	t.Parallel()
	tokens := map[string]Role{"tok-reader": RoleReader, "tok-operator": RoleOperator, "tok-admin": RoleAdmin}
	b := setup(t, &Options{Tokens: tokens, Addr: "127.0.0.1:0"})
	require.True(t, b.srv.AuthEnabled())
	b.deploy(t, "tok-admin", slowYAML)
	id := b.start(t, "tok-admin", "slow", `{"input":{"orderId":"o-1"}}`)

	type class struct {
		name string
		need Role // "" for public
		reqs []request
	}
	classes := []class{
		{"Public", "", []request{
			{method: "GET", path: "/healthz"},
			{method: "GET", path: "/readyz"},
			{method: "GET", path: "/api/v1/openapi.json"},
		}},
		{"Read", RoleReader, []request{
			{method: "GET", path: "/api/v1/definitions"},
			{method: "GET", path: "/api/v1/definitions/slow"},
			{method: "GET", path: "/api/v1/definitions/slow/versions/1"},
			{method: "GET", path: "/api/v1/instances"},
			{method: "GET", path: "/api/v1/instances/" + id},
			{method: "GET", path: "/api/v1/instances/" + id + "/journal"},
		}},
		{"Operate", RoleOperator, []request{
			{method: "POST", path: "/api/v1/workflows/slow/instances", contentType: "application/json", body: `{"input":{"orderId":"o-2"},"idempotencyKey":"same"}`},
			// Resubmitting a running instance is refused with 409 once the
			// token is accepted: enough to tell auth passed.
			{method: "POST", path: "/api/v1/instances/" + id + "/resubmit", contentType: "application/json", body: `{}`},
		}},
		{"Admin", RoleAdmin, []request{
			{method: "POST", path: "/api/v1/definitions", contentType: "application/yaml", body: slowYAML},
		}},
	}
	type cred struct {
		name   string
		token  string
		header string
		role   Role // the role it has; "" for none
		valid  bool
	}
	creds := []cred{
		{name: "NoToken"},
		{name: "UnknownToken", token: "tok-nope"},
		{name: "NotBearer", header: "Basic dG9rLWFkbWluOg=="},
		{name: "EmptyBearer", header: "Bearer "},
		{name: "TokenWithoutScheme", header: "tok-admin"},
		{name: "Reader", token: "tok-reader", role: RoleReader, valid: true},
		{name: "Operator", token: "tok-operator", role: RoleOperator, valid: true},
		{name: "Admin", token: "tok-admin", role: RoleAdmin, valid: true},
		{name: "LowerCaseScheme", header: "bearer tok-admin", role: RoleAdmin, valid: true},
	}
	for _, c := range classes {
		for _, cr := range creds {
			t.Run(c.name+"/"+cr.name, func(t *testing.T) {
				for _, req := range c.reqs {
					req.token, req.header = cr.token, cr.header
					res := b.do(t, req)
					what := fmt.Sprintf("%s %s: %s", req.method, req.path, res.body)
					switch {
					case c.need == "":
						require.Equal(t, http.StatusOK, res.status, what)
					case !cr.valid:
						require.Equal(t, http.StatusUnauthorized, res.status, what)
						require.Equal(t, ordoclient.CodeUnauthenticated, res.errorBody(t).Code)
						require.Equal(t, `Bearer realm="ordo"`, res.header.Get("WWW-Authenticate"))
					case cr.role.rank() < c.need.rank():
						require.Equal(t, http.StatusForbidden, res.status, what)
						e := res.errorBody(t)
						require.Equal(t, ordoclient.CodeForbidden, e.Code)
						require.Contains(t, e.Message, string(c.need))
					default:
						require.NotContains(t, []int{401, 403}, res.status, what)
						require.Less(t, res.status, 500, what)
					}
				}
			})
		}
	}

	t.Run("RefusedRequestsStoreNothing", func(t *testing.T) {
		before := b.storeState(t)
		for _, tok := range []string{"", "tok-nope", "tok-reader"} {
			res := b.do(t, request{method: "POST", path: "/api/v1/workflows/slow/instances", token: tok, contentType: "application/json", body: `{"input":{"orderId":"o-9"}}`})
			require.Contains(t, []int{401, 403}, res.status)
			res = b.do(t, request{method: "POST", path: "/api/v1/definitions", token: tok, contentType: "application/yaml", body: quickYAML})
			require.Contains(t, []int{401, 403}, res.status)
		}
		require.Equal(t, before, b.storeState(t))
	})
}
