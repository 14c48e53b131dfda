package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"

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
}

func newAuthenticator(tokens map[string]Role) *authenticator {
	a := &authenticator{}
	for tok, role := range tokens {
		a.tokens = append(a.tokens, tokenRole{digest: sha256.Sum256([]byte(tok)), role: role})
	}
	return a
}

func (a *authenticator) enabled() bool { return len(a.tokens) > 0 }

// role returns the role of the request's bearer token.
func (a *authenticator) role(r *http.Request) (Role, *apiError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", errorf(ordoclient.CodeUnauthenticated, "this route needs a bearer token (Authorization: Bearer TOKEN)")
	}
	scheme, tok, ok := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", errorf(ordoclient.CodeUnauthenticated, "the Authorization header must be \"Bearer TOKEN\"")
	}
	d := sha256.Sum256([]byte(tok))
	var found Role
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare(d[:], t.digest[:]) == 1 {
			found = t.role
		}
	}
	if found == "" {
		return "", errorf(ordoclient.CodeUnauthenticated, "unknown token")
	}
	return found, nil
}

// authorize checks that the request may use a route that needs role need
// ("" for public routes).
func (a *authenticator) authorize(r *http.Request, need Role) *apiError {
	if need == "" || !a.enabled() {
		return nil
	}
	have, err := a.role(r)
	if err != nil {
		return err
	}
	if have.rank() < need.rank() {
		return &apiError{
			code:    ordoclient.CodeForbidden,
			message: "role " + string(have) + " may not do this: it needs " + string(need),
			details: map[string]any{"role": have, "needs": need},
		}
	}
	return nil
}
