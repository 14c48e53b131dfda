package server

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordoswm"
)

// Definition formats POST /api/v1/definitions takes in its format
// parameter.
const (
	// FormatOrdo is Ordo's own YAML/JSON template.
	FormatOrdo = "ordo"
	// FormatSWM is a Serverless Workflow Manager JSON template, converted
	// by [ordoswm.Convert].
	FormatSWM = "swm"
)

// parseDefinition parses a deployed definition in the format the request's
// format parameter names, or, without one, in the format its shape says:
// an SWM template is a JSON object with workflow_name (or stages with
// stage_name) and no workflow field, which an Ordo template must have.
func parseDefinition(r *http.Request, data []byte) (*ordo.Definition, error) {
	format := r.URL.Query().Get("format")
	switch format {
	case "":
		format = FormatOrdo
		if ordoswm.IsTemplate(data) {
			format = FormatSWM
		}
	case FormatOrdo, FormatSWM:
	default:
		return nil, &apiError{
			code:    ordoclient.CodeInvalidParameter,
			message: fmt.Sprintf("format must be %s or %s (or absent, to tell by the definition's shape), not %q", FormatOrdo, FormatSWM, format),
			details: map[string]any{"parameter": "format"},
		}
	}
	var (
		def *ordo.Definition
		err error
	)
	if format == FormatSWM {
		def, err = ordoswm.Convert(data)
		if err != nil {
			err = definitionError(err)
			if ae, ok := err.(*apiError); ok {
				ae.message = "invalid Serverless Workflow Manager template: " + strings.TrimPrefix(ae.message, "invalid workflow definition: ")
			}
			return nil, err
		}
		return def, nil
	}
	def, err = ordo.ParseDefinition(data, "")
	if err != nil {
		return nil, definitionError(err)
	}
	return def, nil
}

// swmEvent: POST /api/v1/swm/events.
func (s *Server) swmEvent(w http.ResponseWriter, r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return &apiError{
				code:    ordoclient.CodeUnsupportedMediaType,
				message: fmt.Sprintf("Content-Type %q is not an event: send application/json", ct),
				details: map[string]any{"supported": []string{"application/json"}},
			}
		}
	}
	data, err := readBody(r)
	if err != nil {
		return err
	}
	ev, err := ordoswm.ParseEvent(data)
	if err != nil {
		return swmError(err)
	}
	h := &ordoswm.Events{Engine: s.eng, Tasks: ordoswm.EngineTasks(s.eng)}
	res, err := h.Handle(r.Context(), ev)
	if err != nil {
		return swmError(err)
	}
	status := http.StatusOK
	if res.Outcome == ordoswm.OutcomeStarted {
		status = http.StatusCreated
		w.Header().Set("Location", "/api/v1/instances/"+res.InstanceID)
	}
	writeJSON(w, status, res)
	return nil
}

// swmError turns an error of ordoswm into an API error.
func swmError(err error) error {
	var ee *ordoswm.EventError
	switch {
	case errors.As(err, &ee):
		ae := errorf(ordoclient.CodeInvalidParameter, "%v", ee)
		if ee.Field != "" {
			ae.details = map[string]any{"field": ee.Field}
		}
		return ae
	case errors.Is(err, ordoswm.ErrNoWorkflow):
		return errorf(ordoclient.CodeWorkflowNotFound, "%v", err)
	case errors.Is(err, ordoswm.ErrNoInstance):
		return errorf(ordoclient.CodeInstanceNotFound, "%v", err)
	case errors.Is(err, ordoswm.ErrTaskState):
		return errorf(ordoclient.CodeInvalidState, "%v", err)
	case errors.Is(err, ordoswm.ErrNoTasks):
		return errorf(ordoclient.CodeUnavailable, "%v", err)
	case errors.Is(err, ordo.ErrInvalid):
		return errorf(ordoclient.CodeInvalidInput, "%v", err)
	}
	return err
}
