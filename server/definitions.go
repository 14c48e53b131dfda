package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordotype"
)

// definitionMediaTypes are the Content-Types POST /api/v1/definitions
// takes. An absent Content-Type is read as YAML (JSON is YAML too).
var definitionMediaTypes = []string{"application/yaml", "application/x-yaml", "text/yaml", "application/json"}

// deploy: POST /api/v1/definitions.
func (s *Server) deploy(w http.ResponseWriter, r *http.Request) error {
	mt := ""
	if ct := r.Header.Get("Content-Type"); ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			mt = ct
		}
	}
	if mt != "" && !slices.Contains(definitionMediaTypes, mt) {
		return &apiError{
			code:    ordoclient.CodeUnsupportedMediaType,
			message: fmt.Sprintf("Content-Type %q is not a workflow definition: send application/yaml or application/json", mt),
			details: map[string]any{"supported": definitionMediaTypes},
		}
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	if mt == "application/json" {
		var v any
		if err := unmarshalStrict(data, &v); err != nil {
			return err
		}
	}
	def, err := parseDefinition(r, data)
	if err != nil {
		return err
	}
	d, err := s.eng.DeployDefinition(r.Context(), def)
	if err != nil {
		return err
	}
	version, created := d.Version, d.Created
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", fmt.Sprintf("/api/v1/definitions/%s/versions/%d", url.PathEscape(def.Name()), version))
	}
	writeJSON(w, status, &ordoclient.DeployResult{Name: def.Name(), Version: version, Hash: def.Hash(), Created: created})
	return nil
}

// definitionError turns the error of ordo.ParseDefinition into an
// invalid_definition answer listing every problem with its position.
func definitionError(err error) error {
	var ve *ordo.ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) == 0 {
		return &apiError{
			code:    ordoclient.CodeInvalidDefinition,
			message: "invalid workflow definition: " + err.Error(),
			details: map[string]any{"problems": []ordoclient.Problem{{Message: err.Error()}}},
		}
	}
	problems := make([]ordoclient.Problem, len(ve.Problems))
	for i, p := range ve.Problems {
		problems[i] = ordoclient.Problem{Line: p.Line, Column: p.Column, Step: p.Step, Field: p.Field, Message: p.Message}
	}
	msg := "invalid workflow definition: " + problems[0].String()
	if len(problems) > 1 {
		msg += fmt.Sprintf(" (and %d more problems)", len(problems)-1)
	}
	return &apiError{code: ordoclient.CodeInvalidDefinition, message: msg, details: map[string]any{"problems": problems}}
}

// listDefinitions: GET /api/v1/definitions.
func (s *Server) listDefinitions(w http.ResponseWriter, r *http.Request) error {
	defs, err := s.eng.Definitions(r.Context())
	if err != nil {
		return err
	}
	out := ordoclient.DefinitionList{Definitions: make([]ordoclient.Definition, 0, len(defs))}
	for _, d := range defs {
		out.Definitions = append(out.Definitions, definitionJSON(d))
	}
	writeJSON(w, http.StatusOK, &out)
	return nil
}

// getDefinition: GET /api/v1/definitions/{name}.
func (s *Server) getDefinition(w http.ResponseWriter, r *http.Request) error {
	return s.writeDefinition(w, r, r.PathValue("name"), 0)
}

// getDefinitionVersion: GET /api/v1/definitions/{name}/versions/{version}.
func (s *Server) getDefinitionVersion(w http.ResponseWriter, r *http.Request) error {
	v, err := strconv.Atoi(r.PathValue("version"))
	if err != nil || v < 1 {
		return &apiError{
			code:    ordoclient.CodeInvalidParameter,
			message: fmt.Sprintf("version must be a positive integer, not %q", r.PathValue("version")),
			details: map[string]any{"parameter": "version"},
		}
	}
	return s.writeDefinition(w, r, r.PathValue("name"), v)
}

func (s *Server) writeDefinition(w http.ResponseWriter, r *http.Request, name string, version int) error {
	d, err := s.eng.DefinitionVersion(r.Context(), name, version)
	if errors.Is(err, ordotype.ErrNotFound) {
		if version == 0 {
			return errorf(ordoclient.CodeWorkflowNotFound, "no workflow %q is deployed", name)
		}
		return errorf(ordoclient.CodeWorkflowNotFound, "workflow %q has no version %d", name, version)
	}
	if err != nil {
		return err
	}
	out := definitionJSON(d)
	writeJSON(w, http.StatusOK, &out)
	return nil
}

func definitionJSON(d *ordo.DefinitionVersion) ordoclient.Definition {
	return ordoclient.Definition{
		Name: d.Name, Version: d.Version, Hash: d.Hash, CreatedAt: d.CreatedAt,
		Definition: json.RawMessage(d.Definition.JSON()),
	}
}
