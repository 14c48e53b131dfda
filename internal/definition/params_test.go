package definition

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse_Params(t *testing.T) {
	t.Parallel()

	src := `
workflow: pizza
steps:
  - id: confirm
    task: {queue: q}
    params: {business_status: ORDER CONFIRMED, stage_name: ORDER, n: 1.50, list: [1, {b: 2, a: 1}]}
  - id: deliver
    after: confirm
    human: {role: driver}
    params: {assigned_to: driver}
`
	w, err := Parse([]byte(src), "")
	require.NoError(t, err)
	require.JSONEq(t, `{"business_status":"ORDER CONFIRMED","stage_name":"ORDER","n":1.50,"list":[1,{"a":1,"b":2}]}`, string(w.Step("confirm").Params))
	require.Equal(t, `{"assigned_to":"driver"}`, string(w.Step("deliver").Params))
	// Canonical: keys sorted, compact.
	require.Equal(t, `{"business_status":"ORDER CONFIRMED","list":[1,{"a":1,"b":2}],"n":1.5,"stage_name":"ORDER"}`, string(w.Step("confirm").Params))
	require.Contains(t, string(w.Source), `"params":{"business_status":"ORDER CONFIRMED","list"`)

	// The same params with keys in another order give the same hash.
	other, err := Parse([]byte(strings.Replace(src,
		"{business_status: ORDER CONFIRMED, stage_name: ORDER, n: 1.50, list: [1, {b: 2, a: 1}]}",
		"{list: [1, {a: 1, b: 2}], n: 1.50, stage_name: ORDER, business_status: ORDER CONFIRMED}", 1)), "")
	require.NoError(t, err)
	require.Equal(t, w.Hash, other.Hash)

	// Params change the hash.
	changed, err := Parse([]byte(strings.Replace(src, "assigned_to: driver", "assigned_to: chef", 1)), "")
	require.NoError(t, err)
	require.NotEqual(t, w.Hash, changed.Hash)

	// The canonical source is a valid template with the same params.
	again, err := Parse(w.Source, "")
	require.NoError(t, err)
	require.Equal(t, w.Hash, again.Hash)
	require.NoError(t, compileWorkflowSchema(t).Validate(yamlToJSON(t, w.Source)))
}

func TestParse_ParamsInvalid(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		src, want string
		schema    bool // the JSON Schema rejects it too
	}{
		"NotAnObject": {
			src:    "workflow: x\nsteps:\n  - {id: a, task: {queue: q}, params: [1, 2]}",
			want:   `line 3:39: step "a": params: must be an object`,
			schema: true,
		},
		"String": {
			src:    "workflow: x\nsteps:\n  - {id: a, task: {queue: q}, params: hello}",
			want:   `step "a": params: must be an object`,
			schema: true,
		},
		"TimerStep": {
			src:  "workflow: x\nsteps:\n  - {id: a, timer: {duration: 1s}, params: {k: v}}",
			want: `step "a": params: only task and human steps take params, this is a timer step`,
		},
		"TooLarge": {
			src:  "workflow: x\nsteps:\n  - {id: a, task: {queue: q}, params: {k: " + strings.Repeat("x", MaxParamsSize) + "}}",
			want: `step "a": params: is 65544 bytes, more than the limit of 65536`,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.src), "")
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.want)
			if tt.schema {
				require.Error(t, compileWorkflowSchema(t).Validate(yamlToJSON(t, []byte(tt.src))), "the schema rejects it too")
			}
		})
	}

	// A spec built in Go is checked the same way, and its numbers are
	// those its canonical source gives when parsed.
	w, err := Compile(&Spec{Workflow: "x", Steps: []SpecStep{{ID: "a", Task: &TaskSpec{Queue: "q"}, Params: []byte(`{"f": 3.10, "i": 7, "e": 1e3, "z": 2.0, "u": 12345678901234567890}`)}}})
	require.NoError(t, err)
	require.Equal(t, `{"e":1000,"f":3.1,"i":7,"u":12345678901234567890,"z":2}`, string(w.Step("a").Params))
	again, err := Parse(w.Source, "")
	require.NoError(t, err)
	require.Equal(t, w.Hash, again.Hash)

	_, err = Compile(&Spec{Workflow: "x", Steps: []SpecStep{{ID: "a", Task: &TaskSpec{Queue: "q"}, Params: []byte(`"s"`)}}})
	require.ErrorContains(t, err, `step "a": params: must be an object`)
}
