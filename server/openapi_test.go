package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordoclient"
)

const openAPIURL = "https://ordo.invalid/openapi.json"

// openAPIDoc is the parsed OpenAPI document, able to say which documented
// operation a request is and to check an answer against it.
type openAPIDoc struct {
	raw   map[string]any
	paths map[string]map[string]map[string]any // path -> method (lower case) -> operation
	mux   *http.ServeMux                       // one pattern per documented operation

	mu       sync.Mutex // guards compiler and schemas
	compiler *jsonschema.Compiler
	schemas  map[string]*jsonschema.Schema
}

var loadOpenAPIOnce = sync.OnceValues(func() (*openAPIDoc, error) {
	d := &openAPIDoc{paths: map[string]map[string]map[string]any{}, mux: http.NewServeMux(), schemas: map[string]*jsonschema.Schema{}}
	if err := json.Unmarshal(openAPIDocument, &d.raw); err != nil {
		return nil, err
	}
	for path, item := range d.raw["paths"].(map[string]any) {
		d.paths[path] = map[string]map[string]any{}
		for method, op := range item.(map[string]any) {
			d.paths[path][method] = op.(map[string]any)
			d.mux.HandleFunc(strings.ToUpper(method)+" "+path, func(http.ResponseWriter, *http.Request) {})
		}
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(openAPIDocument))
	if err != nil {
		return nil, err
	}
	d.compiler = jsonschema.NewCompiler()
	d.compiler.DefaultDraft(jsonschema.Draft2020)
	if err := d.compiler.AddResource(openAPIURL, doc); err != nil {
		return nil, err
	}
	return d, nil
})

func loadOpenAPI(t testing.TB) *openAPIDoc {
	t.Helper()
	d, err := loadOpenAPIOnce()
	require.NoError(t, err)
	return d
}

// schema compiles the schema at a JSON pointer of the document.
func (d *openAPIDoc) schema(t testing.TB, pointer string) *jsonschema.Schema {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if s := d.schemas[pointer]; s != nil {
		return s
	}
	s, err := d.compiler.Compile(openAPIURL + "#" + pointer)
	require.NoError(t, err, pointer)
	d.schemas[pointer] = s
	return s
}

// pointerEscape escapes a JSON pointer token.
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// check requires that res is a documented answer of the operation req is:
// its status is listed, and its body matches the listed schema.
func (d *openAPIDoc) check(t testing.TB, req *http.Request, res *response) {
	t.Helper()
	if ct := res.header.Get("Content-Type"); strings.HasPrefix(ct, "text/plain") {
		// A text answer (/metrics): the operation must document it.
		_, pattern := d.mux.Handler(req)
		require.NotEmpty(t, pattern, "%s %s answered text but is not documented", req.Method, req.URL)
		method, path, _ := strings.Cut(pattern, " ")
		r, ok := d.paths[path][strings.ToLower(method)]["responses"].(map[string]any)[strconv.Itoa(res.status)].(map[string]any)
		require.True(t, ok, "%s %s answered %d, which the OpenAPI document does not list", req.Method, req.URL, res.status)
		require.Contains(t, r["content"], "text/plain", "%s %s answered text, which the OpenAPI document does not list", req.Method, req.URL)
		return
	}
	require.Equal(t, "application/json", res.header.Get("Content-Type"), "%s %s", req.Method, req.URL)
	_, pattern := d.mux.Handler(req)
	pointer := "/components/schemas/ErrorResponse"
	if pattern == "" {
		// Not a documented operation: only route_not_found and
		// method_not_allowed may answer.
		require.Contains(t, []int{404, 405}, res.status, "%s %s is not documented but answered %d: %s", req.Method, req.URL, res.status, res.body)
	} else {
		method, path, _ := strings.Cut(pattern, " ")
		method = strings.ToLower(method)
		op := d.paths[path][method]
		status := strconv.Itoa(res.status)
		r, ok := op["responses"].(map[string]any)[status].(map[string]any)
		require.True(t, ok, "%s %s answered %d, which the OpenAPI document does not list: %s", req.Method, req.URL, res.status, res.body)
		if ref, ok := r["$ref"].(string); ok {
			pointer = strings.TrimPrefix(ref, "#") + "/content/application~1json/schema"
		} else {
			pointer = "/paths/" + pointerEscape(path) + "/" + method + "/responses/" + status + "/content/application~1json/schema"
		}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(res.body))
	require.NoError(t, err, "%s %s: answer is not JSON: %s", req.Method, req.URL, res.body)
	require.NoError(t, d.schema(t, pointer).Validate(inst), "%s %s: answer %d does not match %s: %s", req.Method, req.URL, res.status, pointer, res.body)
}

func TestOpenAPI(t *testing.T) {
	t.Parallel()

	t.Run("Version", func(t *testing.T) {
		t.Parallel()
		d := loadOpenAPI(t)
		require.Equal(t, "3.1.0", d.raw["openapi"])
	})

	t.Run("EveryRouteIsDocumented", func(t *testing.T) {
		t.Parallel()
		d := loadOpenAPI(t)
		for _, rt := range routes() {
			op, ok := d.paths[rt.Path][strings.ToLower(rt.Method)]
			require.True(t, ok, "route %s %s is not in openapi.json", rt.Method, rt.Path)
			require.Equal(t, string(rt.Role), op["x-ordo-role"], "x-ordo-role of %s %s", rt.Method, rt.Path)
			if rt.Role == "" {
				require.Equal(t, []any{}, op["security"], "%s %s is public: its security must be []", rt.Method, rt.Path)
			} else {
				require.Contains(t, op["responses"], "401", "%s %s", rt.Method, rt.Path)
				require.Contains(t, op["responses"], "403", "%s %s", rt.Method, rt.Path)
			}
		}
	})

	t.Run("EveryDocumentedOperationIsARoute", func(t *testing.T) {
		t.Parallel()
		d := loadOpenAPI(t)
		for path, methods := range d.paths {
			for method := range methods {
				found := slices.ContainsFunc(routes(), func(rt route) bool {
					return rt.Path == path && strings.ToLower(rt.Method) == method
				})
				require.True(t, found, "openapi.json documents %s %s, which is not a route", strings.ToUpper(method), path)
			}
		}
	})

	t.Run("ErrorCodesMatchTheTable", func(t *testing.T) {
		t.Parallel()
		d := loadOpenAPI(t)
		ec := d.raw["components"].(map[string]any)["schemas"].(map[string]any)["ErrorCode"].(map[string]any)
		var enum []any
		var table []any
		for _, c := range ordoclient.Codes {
			enum = append(enum, string(c.Code))
			table = append(table, map[string]any{"code": string(c.Code), "number": float64(c.Number), "status": float64(c.Status)})
		}
		require.Equal(t, enum, ec["enum"])
		require.Equal(t, table, ec["x-ordo-codes"])
		// Numbers are unique, and each status is the one net/http names.
		seen := map[int]bool{}
		for _, c := range ordoclient.Codes {
			require.False(t, seen[c.Number], "number %d used twice", c.Number)
			seen[c.Number] = true
			require.NotEmpty(t, http.StatusText(c.Status), c.Code)
			require.GreaterOrEqual(t, c.Status, 400, c.Code)
		}
	})

	t.Run("EveryDocumentedOperationAnswers", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		d := b.doc
		dep := b.deploy(t, "", quickYAML)
		b.deploy(t, "", slowYAML)
		id := b.start(t, "", "slow", `{"input":{"orderId":"o-1"}}`)

		values := map[string]string{"{name}": dep.Name, "{version}": strconv.Itoa(dep.Version), "{id}": id}
		bodies := map[string]request{
			"/api/v1/definitions":                {contentType: "application/yaml", body: quickYAML},
			"/api/v1/workflows/{name}/instances": {contentType: "application/json", body: `{}`},
			"/api/v1/instances/{id}/resubmit":    {contentType: "application/json", body: `{}`},
			"/api/v1/instances/{id}/cancel":      {contentType: "application/json", body: `{"reason":"test"}`},
			"/api/v1/messages":                   {contentType: "application/json", body: `{"name":"Ping","key":"k"}`},
			"/api/v1/tasks/poll":                 {contentType: "application/json", body: `{"queues":["q"],"worker":"w"}`},
			"/api/v1/tasks/{id}/heartbeat":       {contentType: "application/json", body: `{"claim":1}`},
			"/api/v1/tasks/{id}/complete":        {contentType: "application/json", body: `{"claim":1}`},
			"/api/v1/tasks/{id}/fail":            {contentType: "application/json", body: `{"claim":1,"error":{"message":"m"}}`},
			"/api/v1/swm/events":                 {contentType: "application/json", body: `{"event_name":"StartWorkflow","business_ref_no":"r-1","workflow_name":"` + dep.Name + `"}`},
		}
		for path, methods := range d.paths {
			concrete := path
			for k, v := range values {
				concrete = strings.ReplaceAll(concrete, k, v)
			}
			require.NotContains(t, concrete, "{", "no test value for a parameter of %s", path)
			for method := range methods {
				req := request{method: strings.ToUpper(method), path: concrete}
				if method == "post" {
					body, ok := bodies[path]
					require.True(t, ok, "no test body for POST %s", path)
					req.contentType, req.body = body.contentType, body.body
				}
				res := b.do(t, req)
				require.NotEqual(t, http.StatusNotFound, res.status, "%s %s: %s", req.method, concrete, res.body)
				require.NotEqual(t, http.StatusMethodNotAllowed, res.status, "%s %s: %s", req.method, concrete, res.body)
				require.Less(t, res.status, 500, "%s %s: %s", req.method, concrete, res.body)
			}
		}
	})

	t.Run("CheckIsNotVacuous", func(t *testing.T) {
		t.Parallel()
		d := loadOpenAPI(t)
		for _, body := range []string{`{"id":"x"}`, `{"id":"x","workflow":"w","version":1,"status":"sleeping","input":null,"state":null,"output":null,"error":null,"steps":[],"seq":1,"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z"}`} {
			inst, err := jsonschema.UnmarshalJSON(strings.NewReader(body))
			require.NoError(t, err)
			require.Error(t, d.schema(t, "/components/schemas/Instance").Validate(inst), body)
		}
	})

	t.Run("ServedDocumentIsTheEmbeddedOne", func(t *testing.T) {
		t.Parallel()
		b := setup(t, &Options{Tokens: map[string]Role{"r": RoleReader}})
		res := b.do(t, request{method: "GET", path: "/api/v1/openapi.json"})
		require.Equal(t, http.StatusOK, res.status)
		require.Equal(t, compactJSON(t, OpenAPI()), compactJSON(t, res.body))
	})
}
