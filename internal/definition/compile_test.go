package definition

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordotype"
)

func ptr[T any](v T) *T { return &v }

func TestCompile(t *testing.T) {
	t.Parallel()

	spec := &Spec{
		Workflow: "built",
		Retry:    &SpecRetry{MaxAttempts: ptr(4)},
		Steps: []SpecStep{
			{ID: "a", Task: &TaskSpec{Handler: "h"}},
			{ID: "b", After: StringList{"a"}, Timer: &SpecTimer{Duration: Duration(time.Minute)}},
		},
	}
	w, err := Compile(spec)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, ids(w.Steps))
	require.Equal(t, 4, w.Step("b").Retry.MaxAttempts)
	require.Zero(t, w.Step("a").Line)
	require.NotSame(t, spec, w.Spec, "the workflow keeps its own copy")
	require.Equal(t, spec, w.Spec)

	// The same definition in YAML compiles to the same hash.
	parsed, err := Parse([]byte(`
workflow: built
retry: {maxAttempts: 4}
steps:
  - {id: a, task: {handler: h}}
  - {id: b, after: a, timer: {duration: PT1M}}
`), "")
	require.NoError(t, err)
	require.Equal(t, w.Hash, parsed.Hash)
}

func TestCompile_Invalid(t *testing.T) {
	t.Parallel()

	task := &TaskSpec{Queue: "q"}
	tests := []struct {
		name string
		spec *Spec
		want string
	}{
		{"Nil", nil, "no definition"},
		{"Empty", &Spec{}, "workflow: required\nsteps: at least one step is required"},
		{
			"NegativeDurations",
			&Spec{Workflow: "x", Timeout: -1, Steps: []SpecStep{{ID: "a", Task: task, Timeout: Duration(-time.Second)}, {ID: "b", Timer: &SpecTimer{Duration: -1}}}},
			"timeout: must not be negative\n" +
				`step "a": timeout: must not be negative` + "\n" +
				`step "b": timer.duration: must be positive`,
		},
		{
			"RetryNaN",
			&Spec{Workflow: "x", Retry: &SpecRetry{BackoffFactor: ptr(math.NaN()), Jitter: ptr(math.Inf(1)), InitialInterval: ptr(Duration(0))}, Steps: []SpecStep{{ID: "a", Task: task}}},
			"retry.initialInterval: must be positive\n" +
				"retry.backoffFactor: must be between 1 and 1000000, got NaN\n" +
				"retry.jitter: must be between 0 and 1, got +Inf",
		},
		{
			"StepRetry",
			&Spec{Workflow: "x", Steps: []SpecStep{{ID: "a", Task: task, Retry: &SpecRetry{MaxAttempts: ptr(-1), MaxInterval: ptr(Duration(time.Millisecond))}}}},
			`step "a": retry.maxAttempts: must be at least 1, got -1` + "\n" +
				`step "a": retry.maxInterval: maxInterval (1ms) is less than initialInterval (1s)`,
		},
		{
			"NoRoot",
			&Spec{Workflow: "x", Steps: []SpecStep{{ID: "a", Task: task, OnError: ErrorRoutes{{Next: StringList{"b"}}}}, {ID: "b", Task: task, OnError: ErrorRoutes{{Next: StringList{"a"}}}}}},
			"steps: no step can start: every step has after, or is only an onError/onTimeout target",
		},
		{
			"BadForm",
			&Spec{Workflow: "x", Steps: []SpecStep{{ID: "a", Human: &SpecHuman{Role: "r", Form: []byte(`{"$ref": "file:///etc/passwd"}`)}}}},
			`step "a": human.form: invalid JSON Schema: failing loading "file:///etc/passwd": cannot load file:///etc/passwd: forms must be self-contained`,
		},
		{
			"HeaderValue",
			&Spec{Workflow: "x", Steps: []SpecStep{{ID: "a", HTTP: &SpecHTTP{URL: "http://x", Headers: map[string]string{"X-A": "a\r\nX-B: b"}}}}},
			`step "a": http.headers.X-A: header value must not contain line breaks or NUL`,
		},
		{
			"ChildName",
			&Spec{Workflow: "x", Steps: []SpecStep{{ID: "a", Workflow: &SpecChild{Name: "Warranty"}}}},
			`step "a": workflow.name: invalid name "Warranty": use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Compile(tt.spec)
			require.ErrorIs(t, err, ordotype.ErrInvalid)
			require.EqualError(t, err, tt.want)
		})
	}
}
