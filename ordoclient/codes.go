package ordoclient

// Code is the stable, machine-readable code of an API error. It appears in
// every error response as error.code; the message next to it is for people
// and may change.
type Code string

// API error codes. [Codes] gives each one's number and HTTP status.
const (
	// CodeMalformedJSON: the request body is not JSON (details: offset).
	CodeMalformedJSON Code = "malformed_json"
	// CodeWrongType: a field of the body has the wrong JSON type (details:
	// field, offset, expected).
	CodeWrongType Code = "wrong_type"
	// CodeUnknownField: the body has a field the route does not take
	// (details: field).
	CodeUnknownField Code = "unknown_field"
	// CodeInvalidParameter: a path or query parameter, or a field value, is
	// not acceptable (details: parameter).
	CodeInvalidParameter Code = "invalid_parameter"
	// CodeInvalidDefinition: a workflow definition did not validate
	// (details: problems, each with line, column, step, field, message).
	CodeInvalidDefinition Code = "invalid_definition"
	// CodeInvalidInput: the engine refused a start or resubmit input (not
	// JSON, or its idempotency/business key cannot be computed).
	CodeInvalidInput Code = "invalid_input"
	// CodeUnauthenticated: no bearer token, or one the server does not know.
	CodeUnauthenticated Code = "unauthenticated"
	// CodeForbidden: the token's role may not use this route.
	CodeForbidden Code = "forbidden"
	// CodeRouteNotFound: no route has this path.
	CodeRouteNotFound Code = "route_not_found"
	// CodeWorkflowNotFound: no definition has this name (or version).
	CodeWorkflowNotFound Code = "workflow_not_found"
	// CodeInstanceNotFound: no instance has this id.
	CodeInstanceNotFound Code = "instance_not_found"
	// CodeMethodNotAllowed: the route exists but not with this method
	// (the Allow header lists the ones it has).
	CodeMethodNotAllowed Code = "method_not_allowed"
	// CodeInvalidState: the instance's status does not allow the action
	// (resubmitting a running instance, cancelling a completed one).
	CodeInvalidState Code = "invalid_state"
	// CodeBodyTooLarge: the request body is larger than the server's limit
	// (details: limit).
	CodeBodyTooLarge Code = "body_too_large"
	// CodeUnsupportedMediaType: the Content-Type is not one the route takes
	// (details: supported).
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	// CodeTaskNotFound: no open task has this id.
	CodeTaskNotFound Code = "task_not_found"
	// CodeLeaseLost: the task's lease was lost: the task is done, it was
	// claimed again since, or its instance no longer waits for it. The
	// engine keeps the first completion and records a refused one sent with
	// an older claim in the journal (step.rejected).
	CodeLeaseLost Code = "lease_lost"
	// CodeInvalidOutput: a human task's output does not satisfy the step's
	// form (details: pointer, the JSON pointer of the problem, and message).
	CodeInvalidOutput Code = "invalid_output"
	// CodeInternal: the server failed; the message says how.
	CodeInternal Code = "internal"
	// CodeUnavailable: the server is stopping or its store does not answer.
	CodeUnavailable Code = "unavailable"
)

// CodeInfo describes an error [Code]: its number, which never changes or
// gets reused, and the HTTP status it is sent with.
type CodeInfo struct {
	Code        Code
	Number      int
	Status      int
	Description string
}

// Codes is the table of every API error code, in order of number. It is the
// one place codes are defined: the server answers with these, and the
// OpenAPI document's ErrorCode enum is checked against it.
var Codes = []CodeInfo{
	{CodeMalformedJSON, 1001, 400, "The request body is not valid JSON."},
	{CodeWrongType, 1002, 400, "A field of the request body has the wrong JSON type."},
	{CodeUnknownField, 1003, 400, "The request body has a field the route does not take."},
	{CodeInvalidParameter, 1004, 400, "A path or query parameter, or a field value, is not acceptable."},
	{CodeInvalidDefinition, 1005, 400, "The workflow definition did not validate."},
	{CodeInvalidInput, 1006, 400, "The engine refused the input."},
	{CodeInvalidOutput, 1007, 400, "The output does not satisfy the human task's form."},
	{CodeUnauthenticated, 1101, 401, "Missing or unknown bearer token."},
	{CodeForbidden, 1102, 403, "The token's role may not use this route."},
	{CodeRouteNotFound, 1201, 404, "No route has this path."},
	{CodeWorkflowNotFound, 1202, 404, "No workflow definition has this name or version."},
	{CodeInstanceNotFound, 1203, 404, "No instance has this id."},
	{CodeTaskNotFound, 1204, 404, "No open task has this id."},
	{CodeMethodNotAllowed, 1301, 405, "The route does not take this method."},
	{CodeInvalidState, 1401, 409, "The instance's status does not allow this action."},
	{CodeLeaseLost, 1402, 409, "The task's lease was lost: it is done or was claimed again."},
	{CodeBodyTooLarge, 1501, 413, "The request body is larger than the server's limit."},
	{CodeUnsupportedMediaType, 1502, 415, "The Content-Type is not one the route takes."},
	{CodeInternal, 1901, 500, "The server failed."},
	{CodeUnavailable, 1902, 503, "The server is stopping or its store does not answer."},
}

// Info returns the table entry of c, and false for a code not in [Codes].
func (c Code) Info() (CodeInfo, bool) {
	for _, ci := range Codes {
		if ci.Code == c {
			return ci, true
		}
	}
	return CodeInfo{}, false
}
