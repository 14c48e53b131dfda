package definition

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestSource_Deterministic(t *testing.T) {
	t.Parallel()

	yamlSrc := `
workflow: same
retry: {maxAttempts: 5, initialInterval: 1s}
steps:
  - id: a
    task: {queue: q, command: c}
    timeout: 60s
  - id: b
    after: a
    http: {method: POST, url: "https://example.com", headers: {X-B: "2", X-A: "1"}}
  - id: c
    after: [b]
    human: {role: r, form: {type: object, required: [x], properties: {x: {type: string}}}}
`
	// The same definition with keys reordered, other spellings of the
	// same values (60s = 1m = PT1M, a = [a]) and comments.
	reordered := `
# reordered
steps:
  - task: {command: c, queue: q}
    id: a
    timeout: PT1M
  - http: {headers: {X-A: "1", X-B: "2"}, url: "https://example.com", method: POST}
    after: [a]
    id: b
  - id: c
    human: {form: {properties: {x: {type: string}}, required: [x], type: object}, role: r}
    after: b
retry: {initialInterval: PT1S, maxAttempts: 5}
workflow: same
`
	jsonSrc := `{
  "workflow": "same",
  "retry": {"maxAttempts": 5, "initialInterval": "1s"},
  "steps": [
    {"id": "a", "task": {"queue": "q", "command": "c"}, "timeout": "1m"},
    {"id": "b", "after": "a", "http": {"method": "POST", "url": "https://example.com", "headers": {"X-A": "1", "X-B": "2"}}},
    {"id": "c", "after": ["b"], "human": {"role": "r", "form": {"type": "object", "required": ["x"], "properties": {"x": {"type": "string"}}}}}
  ]
}`
	want, err := Parse([]byte(yamlSrc), "")
	require.NoError(t, err)
	require.Len(t, want.Hash, 64)

	for name, src := range map[string]string{"Again": yamlSrc, "Reordered": reordered, "JSON": jsonSrc} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse([]byte(src), "")
			require.NoError(t, err)
			require.Equal(t, string(want.Source), string(got.Source))
			require.Equal(t, want.Hash, got.Hash)
		})
	}

	changed, err := Parse([]byte(yamlSrc+"    when: input.ok\n"), "")
	require.NoError(t, err)
	require.NotEqual(t, want.Hash, changed.Hash)
}

// TestSource_RoundTrip checks that every valid definition survives being
// parsed back from its Source and from the YAML encoding of its Spec.
func TestSource_RoundTrip(t *testing.T) {
	t.Parallel()

	files, err := filepath.Glob("testdata/valid/*")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			w := mustParseFile(t, filepath.Base(file))
			require.True(t, json.Valid(w.Source))

			again, err := Parse(w.Source, "source.json")
			require.NoError(t, err)
			require.Equal(t, w.Hash, again.Hash)
			require.Equal(t, w.Spec, again.Spec)

			var spec Spec
			require.NoError(t, json.Unmarshal(w.Source, &spec))
			fromJSON, err := Compile(&spec)
			require.NoError(t, err)
			require.Equal(t, w.Hash, fromJSON.Hash)

			y, err := yaml.Marshal(w.Spec)
			require.NoError(t, err)
			fromYAML, err := Parse(y, "spec.yaml")
			require.NoError(t, err, string(y))
			require.Equal(t, w.Hash, fromYAML.Hash)
		})
	}
}

func TestSource_Golden(t *testing.T) {
	t.Parallel()

	// The canonical form is part of the definition's identity: changing it
	// changes every deployed definition's hash.
	w := mustParseFile(t, "deliver-pizza.yaml")
	want, err := os.ReadFile("testdata/deliver-pizza.source.json")
	require.NoError(t, err)
	require.Equal(t, string(want), string(w.Source)+"\n")
}
