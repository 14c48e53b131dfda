package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
)

// authenticator checks bearer tokens. Tokens are kept as SHA-256 digests and
// compared in constant time, all of them each time, so that the time an
// answer takes does not tell how much of a token was right.
type authenticator struct {
	tokens []tokenRole
}

type tokenRole struct {
	digest [sha256.Size]byte
	role   Role
	// assignee are the human-task roles the token carries.
	assignee []string
}

// caller is who sent a request: the role of its token and the human-task
// roles the token carries.
type caller struct {
	role     Role
	assignee []string
}

func newAuthenticator(tokens map[string]Role, taskRoles map[string][]string) *authenticator {
	a := &authenticator{}
	for tok, role := range tokens {
		a.tokens = append(a.tokens, tokenRole{digest: sha256.Sum256([]byte(tok)), role: role, assignee: taskRoles[tok]})
	}
	return a
}

func (a *authenticator) enabled() bool { return len(a.tokens) > 0 }

// caller returns who sent the request, from its bearer token.
func (a *authenticator) caller(r *http.Request) (caller, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return caller{}, errorf(ordoclient.CodeUnauthenticated, "this route needs a bearer token (Authorization: Bearer TOKEN)")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return caller{}, errorf(ordoclient.CodeUnauthenticated, "the Authorization header must be \"Bearer TOKEN\"")
	}
	d := sha256.Sum256([]byte(tok))
	var found caller
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1 {
			found = caller{role: t.role, assignee: t.assignee}
		}
	}
	if found.role == "" {
		return caller{}, errorf(ordoclient.CodeUnauthenticated, "unknown token")
	}
	return found, nil
}

// authorize checks that the request may use a route that needs role need
// ("" for public routes).
func (a *authenticator) authorize(r *http.Request, need Role) *apiError {
	if need == "" || !a.enabled() {
		return nil
	}
	c, err := a.caller(r)
	if err != nil {
		return err
	}
	if have := c.role; have.rank() < need.rank() {
		return &apiError{
			code:    ordoclient.CodeForbidden,
			message: "role " + string(have) + " may not do this: it needs " + string(need),
			details: map[string]any{"role": have, "needs": need},
		}
	}
	return nil
}

// person returns who sends a request, for the engine to check a human
// task's role against: nil when the server is open (no tokens), where
// anyone may complete any human task.
func (a *authenticator) person(r *http.Request) (*ordo.Person, Role) {
	if !a.enabled() {
		return nil, ""
	}
	c, err := a.caller(r)
	if err != nil {
		// The route's authorization let the request in: not reached.
		return &ordo.Person{}, ""
	}
	return &ordo.Person{Roles: c.assignee}, c.role
}
