package server

import (
	"context"
	_ "embed"
	"errors"
	"net/http"
	"time"

	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordotype"
)

// openAPIDocument is the OpenAPI 3.1 description of every route.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns the OpenAPI 3.1 document of the API, as served at
// /api/v1/openapi.json.
func OpenAPI() []byte { return append([]byte(nil), openAPIDocument...) }

// openAPI: GET /api/v1/openapi.json.
func (s *Server) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(openAPIDocument)
	return nil
}

// healthz: GET /healthz. The process is alive and serving.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) error {
	writeJSON(w, http.StatusOK, &ordoclient.Health{Status: "ok"})
	return nil
}

// readyProbeID is an instance id that is never used: looking it up checks
// that the store answers.
const readyProbeID = "ordo-readiness-probe"

// readyz: GET /readyz. The server is not stopping and its store answers.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.stopping.Load() {
		return errorf(ordoclient.CodeUnavailable, "the server is stopping")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.eng.Store().GetInstance(ctx, readyProbeID); err != nil && !errors.Is(err, ordotype.ErrNotFound) {
		return errorf(ordoclient.CodeUnavailable, "the store does not answer: %v", err)
	}
	writeJSON(w, http.StatusOK, &ordoclient.Health{Status: "ready"})
	return nil
}
