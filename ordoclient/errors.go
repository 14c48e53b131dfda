package ordoclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/ordoflow/ordo/ordotype"
)

// ErrUnauthorized is matched (with errors.Is) by an [*Error] with status 401
// or 403: the token is missing, unknown, or its role may not do this.
var ErrUnauthorized = errors.New("unauthorized")

// Error is an error answer of the API. The client returns it for every
// non-2xx response, and the server encodes it in an [ErrorResponse].
//
// It matches, with errors.Is, [ordotype.ErrNotFound] for status 404,
// [ordotype.ErrInvalid] for 400 and 409 (what the library returns for the
// same mistakes), and [ErrUnauthorized] for 401 and 403.
type Error struct {
	// Status is the HTTP status of the response. It is not part of the
	// JSON body.
	Status int `json:"-"`
	// Code is the stable code; see [Codes].
	Code Code `json:"code"`
	// Number is the code's number in [Codes].
	Number int `json:"number,omitempty"`
	// Message is for people.
	Message string `json:"message"`
	// Details depend on the code; see the Code constants.
	Details json.RawMessage `json:"details,omitempty"`
}

// Error returns the message and the code.
func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// Is reports whether target is the sentinel that matches e's status.
func (e *Error) Is(target error) bool {
	switch target {
	case ordotype.ErrNotFound:
		return e.Status == http.StatusNotFound
	case ordotype.ErrInvalid:
		return e.Status == http.StatusBadRequest || e.Status == http.StatusConflict
	case ErrUnauthorized:
		return e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden
	}
	return false
}

// Problems returns the problems of a [CodeInvalidDefinition] error, and nil
// for any other.
func (e *Error) Problems() []Problem {
	if e.Code != CodeInvalidDefinition || len(e.Details) == 0 {
		return nil
	}
	var d struct {
		Problems []Problem `json:"problems"`
	}
	if json.Unmarshal(e.Details, &d) != nil {
		return nil
	}
	return d.Problems
}

// String formats p as `line 3:7: step "pay": retry.maxAttempts: message`,
// leaving out the parts that are unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "line %d", p.Line)
		if p.Column > 0 {
			fmt.Fprintf(&b, ":%d", p.Column)
		}
		b.WriteString(": ")
	}
	if p.Step != "" {
		fmt.Fprintf(&b, "step %q: ", p.Step)
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}
