package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/ordoflow/ordo/ordoclient"
)

// apiError is an error answer: a code from [ordoclient.Codes], a message
// for people and code-specific details.
type apiError struct {
	code    ordoclient.Code
	message string
	details any
}

func (e *apiError) Error() string { return string(e.code) + ": " + e.message }

// errorf returns an apiError with a formatted message and no details.
func errorf(code ordoclient.Code, format string, args ...any) *apiError {
	return &apiError{code: code, message: fmt.Sprintf(format, args...)}
}

// status returns the HTTP status of the error's code.
func (e *apiError) status() int {
	if ci, ok := e.code.Info(); ok {
		return ci.Status
	}
	return http.StatusInternalServerError
}

// write sends e as {"error": {...}}.
func (e *apiError) write(w http.ResponseWriter) {
	body := &ordoclient.Error{Code: e.code, Message: e.message}
	if ci, ok := e.code.Info(); ok {
		body.Number = ci.Number
	}
	if e.details != nil {
		if d, err := json.Marshal(e.details); err == nil {
			body.Details = d
		}
	}
	if e.code == ordoclient.CodeUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ordo"`)
	}
	writeJSON(w, e.status(), &ordoclient.ErrorResponse{Error: body})
}

// writeJSON sends v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		data = []byte(`{"error":{"code":"internal","number":1901,"message":"encoding the answer failed"}}`)
		status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// readBody reads the whole request body, which http.MaxBytesReader limits.
// A body over the limit gives a body_too_large error.
func readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &apiError{
				code:    ordoclient.CodeBodyTooLarge,
				message: fmt.Sprintf("the request body is larger than the limit of %d bytes", mbe.Limit),
				details: map[string]any{"limit": mbe.Limit},
			}
		}
		return nil, errorf(ordoclient.CodeMalformedJSON, "reading the request body: %v", err)
	}
	return data, nil
}

// decodeJSON reads the request body into v, strictly: it must be one JSON
// object with only the fields v has, each of the right type. An empty body
// leaves v as it is (all fields of a request body are optional).
func decodeJSON(r *http.Request, v any) error {
	data, err := readBody(r)
	if err != nil {
		return err
	}
	return unmarshalStrict(data, v)
}

// unmarshalStrict is the decoding half of decodeJSON, on bytes.
func unmarshalStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, data, dec)
	}
	off := dec.InputOffset()
	if rest := bytes.TrimLeft(data[off:], " \t\r\n"); len(rest) > 0 {
		at := int64(len(data) - len(rest))
		return &apiError{
			code:    ordoclient.CodeMalformedJSON,
			message: fmt.Sprintf("malformed JSON at byte offset %d: unexpected data after the JSON object", at),
			details: map[string]any{"offset": at},
		}
	}
	return nil
}

// jsonError turns an error of encoding/json into an apiError that says
// where the problem is.
func jsonError(err error, data []byte, dec *json.Decoder) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syn):
		return &apiError{
			code:    ordoclient.CodeMalformedJSON,
			message: fmt.Sprintf("malformed JSON at byte offset %d: %s", syn.Offset, strings.TrimPrefix(syn.Error(), "json: ")),
			details: map[string]any{"offset": syn.Offset},
		}
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return &apiError{
			code:    ordoclient.CodeMalformedJSON,
			message: fmt.Sprintf("malformed JSON at byte offset %d: unexpected end of the body", len(data)),
			details: map[string]any{"offset": len(data)},
		}
	case errors.As(err, &typ):
		expected := jsonKind(typ.Type)
		if typ.Field == "" {
			return &apiError{
				code:    ordoclient.CodeWrongType,
				message: fmt.Sprintf("the request body must be a JSON %s, not %s", expected, typ.Value),
				details: map[string]any{"field": "", "offset": typ.Offset, "expected": expected, "got": typ.Value},
			}
		}
		return &apiError{
			code:    ordoclient.CodeWrongType,
			message: fmt.Sprintf("field %q at byte offset %d must be a JSON %s, not %s", typ.Field, typ.Offset, expected, typ.Value),
			details: map[string]any{"field": typ.Field, "offset": typ.Offset, "expected": expected, "got": typ.Value},
		}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &apiError{
			code:    ordoclient.CodeUnknownField,
			message: fmt.Sprintf("unknown field %q (near byte offset %d)", field, dec.InputOffset()),
			details: map[string]any{"field": field, "offset": dec.InputOffset()},
		}
	}
	return errorf(ordoclient.CodeMalformedJSON, "malformed JSON: %v", err)
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Struct, reflect.Map:
		return "object"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "value"
}
