package definition

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// repoRoot is where go.mod is, relative to this package.
const repoRoot = "../.."

// compileWorkflowSchema compiles schema/workflow.schema.json.
func compileWorkflowSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "schema", "workflow.schema.json"))
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	require.NoError(t, err)
	c := jsonschema.NewCompiler()
	require.NoError(t, c.AddResource("workflow.schema.json", doc))
	schema, err := c.Compile("workflow.schema.json")
	require.NoError(t, err)
	return schema
}

// yamlToJSON decodes a YAML or JSON document into the values the schema
// validator expects.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	require.NoError(t, yaml.Unmarshal(data, &v))
	b, err := json.Marshal(v)
	require.NoError(t, err)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	return doc
}

// workflowFiles returns every workflow definition in the repository: the
// YAML and JSON files whose top level has a workflow name. Test data is left
// out except testdata/valid of this package.
func workflowFiles(t *testing.T) []string {
	t.Helper()
	valid := filepath.Join(repoRoot, "internal", "definition", "testdata", "valid")
	var files []string
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			inTestdata := name == "testdata" || strings.Contains(path, "/testdata/")
			towardsValid := strings.HasPrefix(valid, path) || strings.HasPrefix(path, valid)
			if path != repoRoot && (strings.HasPrefix(name, ".") || name == "node_modules" || inTestdata && !towardsValid) {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml", ".json":
		default:
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var top map[string]any
		if yaml.Unmarshal(data, &top) != nil {
			return nil // not a definition, or not ours to check
		}
		if _, ok := top["workflow"].(string); ok {
			files = append(files, path)
		}
		return nil
	})
	require.NoError(t, err)
	return files
}

func TestSchema_RepositoryWorkflows(t *testing.T) {
	t.Parallel()

	schema := compileWorkflowSchema(t)
	files := workflowFiles(t)
	require.Contains(t, files, filepath.Join(repoRoot, "internal", "definition", "testdata", "valid", "order-fulfilment.yaml"))
	for _, file := range files {
		t.Run(strings.TrimPrefix(file, repoRoot+"/"), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			require.NoError(t, schema.Validate(yamlToJSON(t, data)))

			w, err := Parse(data, file)
			require.NoError(t, err)
			require.NoError(t, schema.Validate(yamlToJSON(t, w.Source)), "canonical source")
		})
	}
}

func TestSchema_RejectsInvalid(t *testing.T) {
	t.Parallel()

	schema := compileWorkflowSchema(t)
	tests := []struct {
		name string
		src  string
	}{
		{"MissingName", "steps: [{id: a, task: {queue: q}}]"},
		{"BadName", "workflow: Bad Name\nsteps: [{id: a, task: {queue: q}}]"},
		{"NoSteps", "workflow: x"},
		{"UnknownField", "workflow: x\nsteps: [{id: a, aftr: b, task: {queue: q}}]"},
		{"NoKind", "workflow: x\nsteps: [{id: a}]"},
		{"TwoKinds", "workflow: x\nsteps: [{id: a, task: {queue: q}, timer: {duration: 1s}}]"},
		{"TaskBoth", "workflow: x\nsteps: [{id: a, task: {queue: q, handler: h}}]"},
		{"BadDuration", "workflow: x\nsteps: [{id: a, task: {queue: q}, timeout: 5 minutes}]"},
		{"NumberDuration", "workflow: x\nsteps: [{id: a, task: {queue: q}, timeout: 30}]"},
		{"MaxAttempts", "workflow: x\nretry: {maxAttempts: 0}\nsteps: [{id: a, task: {queue: q}}]"},
		{"Jitter", "workflow: x\nretry: {jitter: 2}\nsteps: [{id: a, task: {queue: q}}]"},
		{"OnFailure", "workflow: x\nonFailure: retry\nsteps: [{id: a, task: {queue: q}}]"},
		{"CompensateWithID", "workflow: x\nsteps: [{id: a, task: {queue: q}, compensate: {id: b, task: {queue: q}}}]"},
		{"BadMethod", "workflow: x\nsteps: [{id: a, http: {method: FETCH, url: 'https://x'}}]"},
		{"TimerBoth", "workflow: x\nsteps: [{id: a, timer: {duration: 1s, until: 'x'}}]"},
		{"RouteDoesNothing", "workflow: x\nsteps: [{id: a, task: {queue: q}, onError: [{codes: [e]}]}, {id: b, task: {queue: q}}]"},
		{"RouteCompensateFalse", "workflow: x\nsteps: [{id: a, task: {queue: q}, onError: [{compensate: false}]}]"},
		{"RouteBoth", "workflow: x\nsteps: [{id: a, task: {queue: q}, onError: [{next: b, compensate: true}]}, {id: b, task: {queue: q}}]"},
		{"RouteEmptyCodes", "workflow: x\nsteps: [{id: a, task: {queue: q}, onError: [{codes: [], next: b}]}, {id: b, task: {queue: q}}]"},
		{"RouteEmptyCode", "workflow: x\nsteps: [{id: a, task: {queue: q}, onError: [{codes: [''], next: b}]}, {id: b, task: {queue: q}}]"},
		{"RouteUnknownField", "workflow: x\nsteps: [{id: a, task: {queue: q}, onError: [{code: e, next: b}]}, {id: b, task: {queue: q}}]"},
		{"RoutesMixed", "workflow: x\nsteps: [{id: a, task: {queue: q}, onError: [b, {next: b}]}, {id: b, task: {queue: q}}]"},
		{"MaxIterationsWithoutNext", "workflow: x\nsteps: [{id: a, task: {queue: q}, maxIterations: 2}]"},
		{"MaxIterationsZero", "workflow: x\nsteps: [{id: a, task: {queue: q}}, {id: b, after: a, task: {queue: q}, next: a, maxIterations: 0}]"},
		{"MaxIterationsTooMany", "workflow: x\nsteps: [{id: a, task: {queue: q}}, {id: b, after: a, task: {queue: q}, next: a, maxIterations: 1001}]"},
		{"NextList", "workflow: x\nsteps: [{id: a, task: {queue: q}}, {id: b, after: a, task: {queue: q}, next: [a]}]"},
		{"NextInCompensation", "workflow: x\nsteps: [{id: a, task: {queue: q}, compensate: {task: {queue: q}, next: a}}]"},
		{"HeartbeatOnTimer", "workflow: x\nsteps: [{id: a, timer: {duration: 1s}, heartbeat: 10s}]"},
		{"HeartbeatNumber", "workflow: x\nsteps: [{id: a, task: {queue: q}, heartbeat: 10}]"},
		{"ChildVersionNegative", "workflow: x\nsteps: [{id: a, workflow: {name: c, version: -1}}]"},
		{"ChildVersionString", "workflow: x\nsteps: [{id: a, workflow: {name: c, version: latest}}]"},
		{"MaxConcurrentNegative", "workflow: x\nmaxConcurrent: -1\nsteps: [{id: a, task: {queue: q}}]"},
		{"BroadcastString", "workflow: x\nsteps: [{id: a, receive: {message: m, broadcast: maybe}}]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Error(t, schema.Validate(yamlToJSON(t, []byte(tt.src))))
			_, err := Parse([]byte(tt.src), "")
			require.Error(t, err, "the compiler rejects it too")
		})
	}
}

func TestSchema_AcceptsNewForms(t *testing.T) {
	t.Parallel()

	schema := compileWorkflowSchema(t)
	for name, src := range map[string]string{
		"ShortOnError":    "workflow: x\nsteps: [{id: a, task: {queue: q}, onError: b}, {id: b, task: {queue: q}}]",
		"ListOnError":     "workflow: x\nsteps: [{id: a, task: {queue: q}, onError: [b]}, {id: b, task: {queue: q}}]",
		"Routes":          "workflow: x\nsteps: [{id: a, task: {queue: q}, onError: [{codes: e, next: b}, {codes: [f, g], compensate: true}, {next: [b]}]}, {id: b, task: {queue: q}}]",
		"CompensateRoute": "workflow: x\nsteps: [{id: a, task: {queue: q}, onError: [{compensate: true}]}]",
		"BackEdge":        "workflow: x\nsteps: [{id: a, task: {queue: q}}, {id: b, after: a, task: {queue: q}, next: a, maxIterations: 1000}]",
		"Heartbeat":       "workflow: x\nsteps: [{id: a, task: {queue: q}, heartbeat: PT30S, compensate: {task: {queue: q}, heartbeat: 1m}}]",
		"TimerUntil":      "workflow: x\nsteps: [{id: a, timer: {until: 'timestamp(input.at)'}}]",
		"Everything":      "workflow: x\nmaxConcurrent: 3\nconcurrencyKey: input.k\ntimeout: P7D\nonFailure: compensate\nsteps: [{id: a, receive: {message: m, correlate: input.k, timeout: P1D, broadcast: true}, onTimeout: [b]}, {id: b, workflow: {name: c, version: 2}}]",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, schema.Validate(yamlToJSON(t, []byte(src))))
			w, err := Parse([]byte(src), "")
			require.NoError(t, err, "the compiler accepts it too")
			require.NoError(t, schema.Validate(yamlToJSON(t, w.Source)), "canonical source")
		})
	}
}
