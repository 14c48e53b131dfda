package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"

	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordotype"
)

// route is one route of the API: a method, a path in http.ServeMux syntax
// (the same as the OpenAPI document's paths) and the role it needs.
type route struct {
	Method string
	Path   string
	// Role is the least role that may use the route; "" means anyone,
	// without a token.
	Role Role

	handle func(s *Server, w http.ResponseWriter, r *http.Request) error
}

// routes is the one list of the API's routes: the mux is built from it, and
// the OpenAPI test walks it.
func routes() []route {
	return []route{
		{Method: "GET", Path: "/healthz", handle: (*Server).healthz},
		{Method: "GET", Path: "/readyz", handle: (*Server).readyz},
		{Method: "GET", Path: "/api/v1/openapi.json", handle: (*Server).openAPI},
		{Method: "GET", Path: "/metrics", Role: RoleReader, handle: (*Server).serveMetrics},

		{Method: "POST", Path: "/api/v1/definitions", Role: RoleAdmin, handle: (*Server).deploy},
		{Method: "GET", Path: "/api/v1/definitions", Role: RoleReader, handle: (*Server).listDefinitions},
		{Method: "GET", Path: "/api/v1/definitions/{name}", Role: RoleReader, handle: (*Server).getDefinition},
		{Method: "GET", Path: "/api/v1/definitions/{name}/versions/{version}", Role: RoleReader, handle: (*Server).getDefinitionVersion},

		{Method: "POST", Path: "/api/v1/workflows/{name}/instances", Role: RoleOperator, handle: (*Server).start},
		{Method: "GET", Path: "/api/v1/instances", Role: RoleReader, handle: (*Server).listInstances},
		{Method: "GET", Path: "/api/v1/instances/{id}", Role: RoleReader, handle: (*Server).getInstance},
		{Method: "GET", Path: "/api/v1/instances/{id}/journal", Role: RoleReader, handle: (*Server).journal},
		{Method: "POST", Path: "/api/v1/instances/{id}/resubmit", Role: RoleOperator, handle: (*Server).resubmit},
		{Method: "POST", Path: "/api/v1/instances/{id}/cancel", Role: RoleOperator, handle: (*Server).cancel},

		{Method: "POST", Path: "/api/v1/messages", Role: RoleOperator, handle: (*Server).send},
		{Method: "POST", Path: "/api/v1/tasks/poll", Role: RoleOperator, handle: (*Server).pollTasks},
		{Method: "GET", Path: "/api/v1/tasks", Role: RoleReader, handle: (*Server).listTasks},
		{Method: "GET", Path: "/api/v1/tasks/{id}", Role: RoleReader, handle: (*Server).getTask},
		{Method: "POST", Path: "/api/v1/tasks/{id}/heartbeat", Role: RoleOperator, handle: (*Server).heartbeatTask},
		{Method: "POST", Path: "/api/v1/tasks/{id}/complete", Role: RoleOperator, handle: (*Server).completeTask},
		{Method: "POST", Path: "/api/v1/tasks/{id}/fail", Role: RoleOperator, handle: (*Server).failTask},
		{Method: "POST", Path: "/api/v1/swm/events", Role: RoleOperator, handle: (*Server).swmEvent},
	}
}

// endpoint wraps a route's handler: authorization, the body limit, and the
// translation of returned errors into JSON error answers.
func (s *Server) endpoint(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.auth.authorize(r, rt.Role); err != nil {
			err.write(w)
			return
		}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		}
		if instanceRoute(rt.Path) {
			noteInstance(r, r.PathValue("id"), "")
		}
		if err := rt.handle(s, w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// writeError answers with err: an apiError as it is; anything else is an
// internal error, or unavailable when the engine is closed.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, ordotype.ErrClosed):
		ae = errorf(ordoclient.CodeUnavailable, "the engine is stopped")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		return // the client went away
	default:
		s.logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "error", err)
		ae = errorf(ordoclient.CodeInternal, "%v", err)
	}
	ae.write(w)
}

// serveHTTP is the server's handler: the mux, with JSON answers for unknown
// paths and wrong methods, and a panic turned into a 500.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.logger.ErrorContext(r.Context(), "handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			errorf(ordoclient.CodeInternal, "the server failed: %v", v).write(w)
		}
	}()
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r)
		return
	}
	// No route: the mux's own handler says whether the path is unknown
	// (404) or has other methods (405, with an Allow header).
	cw := &captureWriter{header: http.Header{}}
	h.ServeHTTP(cw, r)
	if cw.status == http.StatusMethodNotAllowed {
		allow := cw.header.Get("Allow")
		w.Header().Set("Allow", allow)
		(&apiError{
			code:    ordoclient.CodeMethodNotAllowed,
			message: fmt.Sprintf("%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, allow),
			details: map[string]any{"allow": allow},
		}).write(w)
		return
	}
	errorf(ordoclient.CodeRouteNotFound, "no route %s %s (see /api/v1/openapi.json)", r.Method, r.URL.Path).write(w)
}

// captureWriter records what the mux's not-found and method-not-allowed
// handlers answer, so that the server can answer in JSON instead.
type captureWriter struct {
	header http.Header
	status int
}

func (c *captureWriter) Header() http.Header { return c.header }
func (c *captureWriter) Write(p []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(p), nil
}
func (c *captureWriter) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}
