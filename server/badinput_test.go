package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
)

// TestServer_BadInput sends requests the server must refuse: each gets the
// right status and code, nothing is stored, and the server keeps serving.
func TestServer_BadInput(t *testing.T) {
	t.Parallel()
	const maxBody = 4096
	b := setup(t, &Options{MaxBodyBytes: maxBody})
	b.deploy(t, "", slowYAML)
	b.deploy(t, "", keyedYAML)
	b.deploy(t, "", quickYAML)
	waiting := b.start(t, "", "slow", `{"input":{"orderId":"o-1"}}`)
	done := b.start(t, "", "quick", `{}`)
	b.waitStatus(t, done, ordo.StatusCompleted)

	details := func(t *testing.T, e *ordoclient.Error) map[string]any {
		t.Helper()
		var d map[string]any
		require.NoError(t, json.Unmarshal(e.Details, &d), string(e.Details))
		return d
	}
	startPath := "/api/v1/workflows/slow/instances"
	big := `{"input":{"blob":"` + strings.Repeat("x", maxBody) + `"}}`
	bigYAML := quickYAML + "# " + strings.Repeat("x", maxBody) + "\n"

	for _, tc := range []struct {
		name       string
		req        request
		wantStatus int
		wantCode   ordoclient.Code
		check      func(t *testing.T, e *ordoclient.Error)
	}{
		{
			name:       "MalformedJSONTruncated",
			req:        request{method: "POST", path: startPath, body: `{"input": {"a": 1}`},
			wantStatus: 400, wantCode: ordoclient.CodeMalformedJSON,
			check: func(t *testing.T, e *ordoclient.Error) {
				require.EqualValues(t, 18, details(t, e)["offset"])
				require.Contains(t, e.Message, "byte offset 18")
			},
		},
		{
			name:       "MalformedJSONSyntax",
			req:        request{method: "POST", path: startPath, body: `{"input": {"a": 1},}`},
			wantStatus: 400, wantCode: ordoclient.CodeMalformedJSON,
			check: func(t *testing.T, e *ordoclient.Error) {
				require.EqualValues(t, 20, details(t, e)["offset"])
			},
		},
		{
			name:       "TrailingData",
			req:        request{method: "POST", path: startPath, body: `{} {"input": 1}`},
			wantStatus: 400, wantCode: ordoclient.CodeMalformedJSON,
			check: func(t *testing.T, e *ordoclient.Error) {
				require.EqualValues(t, 3, details(t, e)["offset"])
			},
		},
		{
			name:       "NotAnObject",
			req:        request{method: "POST", path: startPath, body: `[1, 2]`},
			wantStatus: 400, wantCode: ordoclient.CodeWrongType,
			check: func(t *testing.T, e *ordoclient.Error) {
				require.Equal(t, "object", details(t, e)["expected"])
			},
		},
		{
			name:       "WrongTypeVersion",
			req:        request{method: "POST", path: startPath, body: `{"version": "2"}`},
			wantStatus: 400, wantCode: ordoclient.CodeWrongType,
			check: func(t *testing.T, e *ordoclient.Error) {
				d := details(t, e)
				require.Equal(t, "version", d["field"])
				require.Equal(t, "integer", d["expected"])
				require.Equal(t, "string", d["got"])
			},
		},
		{
			name:       "WrongTypeKey",
			req:        request{method: "POST", path: startPath, body: `{"idempotencyKey": 7}`},
			wantStatus: 400, wantCode: ordoclient.CodeWrongType,
			check: func(t *testing.T, e *ordoclient.Error) {
				require.Equal(t, "idempotencyKey", details(t, e)["field"])
			},
		},
		{
			name:       "WrongTypeCancelReason",
			req:        request{method: "POST", path: "/api/v1/instances/" + waiting + "/cancel", body: `{"reason": {"why": 1}}`},
			wantStatus: 400, wantCode: ordoclient.CodeWrongType,
		},
		{
			name:       "UnknownField",
			req:        request{method: "POST", path: startPath, body: `{"inptu": {"orderId": "x"}}`},
			wantStatus: 400, wantCode: ordoclient.CodeUnknownField,
			check: func(t *testing.T, e *ordoclient.Error) {
				require.Equal(t, "inptu", details(t, e)["field"])
			},
		},
		{
			name:       "UnknownFieldResubmit",
			req:        request{method: "POST", path: "/api/v1/instances/" + waiting + "/resubmit", body: `{"step": "wait"}`},
			wantStatus: 400, wantCode: ordoclient.CodeUnknownField,
		},
		{
			name:       "NegativeVersion",
			req:        request{method: "POST", path: startPath, body: `{"version": -1}`},
			wantStatus: 400, wantCode: ordoclient.CodeInvalidParameter,
		},
		{
			name:       "InputTheDefinitionCannotKey",
			req:        request{method: "POST", path: "/api/v1/workflows/keyed/instances", body: `{"input": {"customer": "c-1"}}`},
			wantStatus: 400, wantCode: ordoclient.CodeInvalidInput,
		},
		{
			name:       "OversizedStart",
			req:        request{method: "POST", path: startPath, contentType: "application/json", body: big},
			wantStatus: 413, wantCode: ordoclient.CodeBodyTooLarge,
			check: func(t *testing.T, e *ordoclient.Error) {
				require.EqualValues(t, maxBody, details(t, e)["limit"])
			},
		},
		{
			name:       "OversizedDefinition",
			req:        request{method: "POST", path: "/api/v1/definitions", contentType: "application/yaml", body: bigYAML},
			wantStatus: 413, wantCode: ordoclient.CodeBodyTooLarge,
		},
		{
			name:       "OversizedResubmit",
			req:        request{method: "POST", path: "/api/v1/instances/" + waiting + "/resubmit", body: big},
			wantStatus: 413, wantCode: ordoclient.CodeBodyTooLarge,
		},
		{
			name:       "UnknownWorkflow",
			req:        request{method: "POST", path: "/api/v1/workflows/nope/instances", body: `{}`},
			wantStatus: 404, wantCode: ordoclient.CodeWorkflowNotFound,
		},
		{
			name:       "UnknownVersion",
			req:        request{method: "POST", path: startPath, body: `{"version": 9}`},
			wantStatus: 404, wantCode: ordoclient.CodeWorkflowNotFound,
		},
		{
			name:       "UnknownDefinition",
			req:        request{method: "GET", path: "/api/v1/definitions/nope"},
			wantStatus: 404, wantCode: ordoclient.CodeWorkflowNotFound,
		},
		{
			name:       "UnknownDefinitionVersion",
			req:        request{method: "GET", path: "/api/v1/definitions/slow/versions/7"},
			wantStatus: 404, wantCode: ordoclient.CodeWorkflowNotFound,
		},
		{
			name:       "DefinitionVersionNotANumber",
			req:        request{method: "GET", path: "/api/v1/definitions/slow/versions/latest"},
			wantStatus: 400, wantCode: ordoclient.CodeInvalidParameter,
		},
		{
			name:       "DefinitionVersionZero",
			req:        request{method: "GET", path: "/api/v1/definitions/slow/versions/0"},
			wantStatus: 400, wantCode: ordoclient.CodeInvalidParameter,
		},
		{
			name:       "UnknownInstance",
			req:        request{method: "GET", path: "/api/v1/instances/nope"},
			wantStatus: 404, wantCode: ordoclient.CodeInstanceNotFound,
		},
		{
			name:       "UnknownInstanceJournal",
			req:        request{method: "GET", path: "/api/v1/instances/nope/journal"},
			wantStatus: 404, wantCode: ordoclient.CodeInstanceNotFound,
		},
		{
			name:       "UnknownInstanceCancel",
			req:        request{method: "POST", path: "/api/v1/instances/nope/cancel"},
			wantStatus: 404, wantCode: ordoclient.CodeInstanceNotFound,
		},
		{
			name:       "UnknownInstanceResubmit",
			req:        request{method: "POST", path: "/api/v1/instances/nope/resubmit", body: `{}`},
			wantStatus: 404, wantCode: ordoclient.CodeInstanceNotFound,
		},
		{
			name:       "ResubmitUnknownStep",
			req:        request{method: "POST", path: "/api/v1/instances/" + waiting + "/resubmit", body: `{"from": "nope"}`},
			wantStatus: 400, wantCode: ordoclient.CodeInvalidParameter,
		},
		{
			name:       "ResubmitWaiting",
			req:        request{method: "POST", path: "/api/v1/instances/" + waiting + "/resubmit", body: `{}`},
			wantStatus: 409, wantCode: ordoclient.CodeInvalidState,
			check: func(t *testing.T, e *ordoclient.Error) {
				require.Equal(t, "waiting", details(t, e)["status"])
			},
		},
		{
			name:       "CancelCompleted",
			req:        request{method: "POST", path: "/api/v1/instances/" + done + "/cancel", body: `{}`},
			wantStatus: 409, wantCode: ordoclient.CodeInvalidState,
			check: func(t *testing.T, e *ordoclient.Error) {
				require.Equal(t, "completed", details(t, e)["status"])
			},
		},
		{
			name: "DefinitionWithProblems",
			req: request{method: "POST", path: "/api/v1/definitions", contentType: "application/yaml", body: `workflow: broken
steps:
  - id: a
    timer: {duration: 5ms}
  - id: b
    after: [nope]
    timer: {duration: 5ms}
`},
			wantStatus: 400, wantCode: ordoclient.CodeInvalidDefinition,
			check: func(t *testing.T, e *ordoclient.Error) {
				problems := e.Problems()
				require.NotEmpty(t, problems)
				require.Equal(t, 6, problems[0].Line, "%+v", problems)
				require.Positive(t, problems[0].Column)
				require.Equal(t, "b", problems[0].Step)
				require.Contains(t, problems[0].Message, "nope")
				require.Contains(t, e.Message, "line 6")
			},
		},
		{
			name:       "DefinitionYAMLSyntax",
			req:        request{method: "POST", path: "/api/v1/definitions", contentType: "application/yaml", body: "workflow: broken\nsteps:\n  - id: a\n   timer: [\n"},
			wantStatus: 400, wantCode: ordoclient.CodeInvalidDefinition,
			check: func(t *testing.T, e *ordoclient.Error) {
				problems := e.Problems()
				require.Len(t, problems, 1)
				require.Positive(t, problems[0].Line, "%+v", problems)
			},
		},
		{
			name:       "DefinitionUnknownField",
			req:        request{method: "POST", path: "/api/v1/definitions", contentType: "application/yaml", body: "workflow: broken\nsteps:\n  - id: a\n    timer: {duration: 5ms}\n    retries: 3\n"},
			wantStatus: 400, wantCode: ordoclient.CodeInvalidDefinition,
			check: func(t *testing.T, e *ordoclient.Error) {
				require.Equal(t, 5, e.Problems()[0].Line)
			},
		},
		{
			name:       "DefinitionEmpty",
			req:        request{method: "POST", path: "/api/v1/definitions", contentType: "application/yaml"},
			wantStatus: 400, wantCode: ordoclient.CodeInvalidDefinition,
		},
		{
			name:       "DefinitionMalformedJSON",
			req:        request{method: "POST", path: "/api/v1/definitions", contentType: "application/json", body: `{"workflow": "x", "steps": [}`},
			wantStatus: 400, wantCode: ordoclient.CodeMalformedJSON,
			check: func(t *testing.T, e *ordoclient.Error) {
				require.EqualValues(t, 29, details(t, e)["offset"])
			},
		},
		{
			name:       "DefinitionWrongContentType",
			req:        request{method: "POST", path: "/api/v1/definitions", contentType: "text/plain", body: quickYAML},
			wantStatus: 415, wantCode: ordoclient.CodeUnsupportedMediaType,
		},
		{
			name:       "ListUnknownStatus",
			req:        request{method: "GET", path: "/api/v1/instances?status=sleeping"},
			wantStatus: 400, wantCode: ordoclient.CodeInvalidParameter,
			check: func(t *testing.T, e *ordoclient.Error) {
				require.Equal(t, "status", details(t, e)["parameter"])
			},
		},
		{
			name:       "ListBadLimit",
			req:        request{method: "GET", path: "/api/v1/instances?limit=0"},
			wantStatus: 400, wantCode: ordoclient.CodeInvalidParameter,
		},
		{
			name:       "ListLimitTooLarge",
			req:        request{method: "GET", path: "/api/v1/instances?limit=1001"},
			wantStatus: 400, wantCode: ordoclient.CodeInvalidParameter,
		},
		{
			name:       "ListBadTime",
			req:        request{method: "GET", path: "/api/v1/instances?createdAfter=yesterday"},
			wantStatus: 400, wantCode: ordoclient.CodeInvalidParameter,
			check: func(t *testing.T, e *ordoclient.Error) {
				require.Equal(t, "createdAfter", details(t, e)["parameter"])
			},
		},
		{
			name:       "ListUnknownParameter",
			req:        request{method: "GET", path: "/api/v1/instances?state=failed"},
			wantStatus: 400, wantCode: ordoclient.CodeInvalidParameter,
		},
		{
			name:       "WrongMethod",
			req:        request{method: "DELETE", path: "/api/v1/instances/" + waiting},
			wantStatus: 405, wantCode: ordoclient.CodeMethodNotAllowed,
		},
		{
			name:       "WrongMethodCollection",
			req:        request{method: "PUT", path: "/api/v1/definitions", body: quickYAML},
			wantStatus: 405, wantCode: ordoclient.CodeMethodNotAllowed,
		},
		{
			name:       "UnknownRoute",
			req:        request{method: "GET", path: "/api/v1/nope"},
			wantStatus: 404, wantCode: ordoclient.CodeRouteNotFound,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: each case compares the store before and after.
			before := b.storeState(t)
			req := tc.req
			if req.contentType == "" && req.method == "POST" && req.body != "" && !strings.HasPrefix(req.path, "/api/v1/definitions") {
				req.contentType = "application/json"
			}
			res := b.do(t, req)
			require.Equal(t, tc.wantStatus, res.status, string(res.body))
			e := res.errorBody(t)
			require.Equal(t, tc.wantCode, e.Code, string(res.body))
			ci, ok := tc.wantCode.Info()
			require.True(t, ok)
			require.Equal(t, ci.Number, e.Number)
			require.Equal(t, ci.Status, res.status)
			require.NotEmpty(t, e.Message)
			if tc.check != nil {
				tc.check(t, e)
			}
			if tc.wantStatus == http.StatusMethodNotAllowed {
				require.NotEmpty(t, res.header.Get("Allow"))
			}
			require.Equal(t, before, b.storeState(t), "a refused request stored something")
			b.requireHealthy(t)
		})
	}
}

// FuzzStartBody throws bodies at the start route: the answer is always a
// documented one, never a 5xx, and a refused body stores nothing.
func FuzzStartBody(f *testing.F) {
	if testing.Short() {
		f.Skip("fuzz seeds are skipped with -short")
	}
	for _, seed := range []string{
		``, `{}`, `{"input":{"orderId":"a"}}`, `{"input":`, `[]`, `null`, `{"version":"1"}`,
		`{"version":1e400}`, `{"input":"\u0000"}`, `{"idempotencyKey":"k","businessKey":"b"}`,
		`{"x":1}`, `{"input":{}}{}`, "\xff\xfe", `{"input":{"orderId":"a"},"version":-5}`,
	} {
		f.Add(seed)
	}
	b := setup(f, nil)
	b.deploy(f, "", slowYAML)
	f.Fuzz(func(t *testing.T, body string) {
		before := b.storeState(t)
		res := b.do(t, request{method: "POST", path: "/api/v1/workflows/slow/instances", contentType: "application/json", body: body})
		require.Less(t, res.status, 500, string(res.body))
		if res.status >= 400 {
			require.Equal(t, before, b.storeState(t), "a refused request stored something")
		}
	})
}
