package definition

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordotype"
)

// parseErr parses src as "wf.yaml" and returns the error text.
func parseErr(t *testing.T, src string) string {
	t.Helper()
	_, err := Parse([]byte(src), "wf.yaml")
	require.Error(t, err)
	require.ErrorIs(t, err, ordotype.ErrInvalid)
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	require.NotEmpty(t, verr.Problems)
	return err.Error()
}

func TestParse_Invalid(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		src  string
		want string
	}{
		{"SyntaxError", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q\n",
			"wf.yaml:3: invalid YAML: did not find expected ',' or '}'"},
		{"SyntaxIndent", "workflow: x\nsteps:\n  - id: a\n     task: q\n",
			"wf.yaml:4: invalid YAML: mapping values are not allowed in this context"},
		{"TabIndent", "workflow: x\nsteps:\n\t- id: a\n",
			"wf.yaml:3: invalid YAML: found character that cannot start any token"},
		{"Empty", "",
			"wf.yaml: definition is empty"},
		{"OnlyComment", "# nothing\n",
			"wf.yaml: definition is empty"},
		{"NotMapping", "- a\n- b\n",
			"wf.yaml:1:1: definition must be a mapping with workflow and steps"},
		{"Scalar", "hello",
			"wf.yaml:1:1: definition must be a mapping with workflow and steps"},
		{"TwoDocuments", "workflow: x\nsteps: [{id: a, task: {queue: q}}]\n---\nworkflow: y\n",
			"wf.yaml:3: invalid YAML: only one document is allowed"},
		{"Alias", "workflow: x\nsteps:\n  - &a {id: a, task: {queue: q}}\n  - *a\n",
			"wf.yaml:4:5: YAML aliases are not allowed"},
		{"UnknownField", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n  - id: b\n    aftr: [a]\n    task: {queue: q}\n",
			"wf.yaml:6:5: step \"b\": aftr: unknown field (did you mean \"after\"?)"},
		{"UnknownTopField", "workflow: x\nstep:\n  - id: a\n",
			"wf.yaml:1:1: steps: at least one step is required\n" +
				"wf.yaml:2:1: step: unknown field (did you mean \"steps\"?)"},
		{"DuplicateField", "workflow: x\nworkflow: y\nsteps: [{id: a, task: {queue: q}}]\n",
			"wf.yaml:2:1: workflow: duplicate field"},
		{"MissingName", "steps:\n  - id: a\n    task: {queue: q}\n",
			"wf.yaml:1:1: workflow: required"},
		{"BadName", "workflow: Order Fulfilment\nsteps:\n  - id: a\n    task: {queue: q}\n",
			"wf.yaml:1:11: workflow: invalid name \"Order Fulfilment\": use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit"},
		{"NoSteps", "workflow: x\n",
			"wf.yaml:1:1: steps: at least one step is required"},
		{"EmptySteps", "workflow: x\nsteps: []\n",
			"wf.yaml:2:8: steps: at least one step is required"},
		{"MissingID", "workflow: x\nsteps:\n  - task: {queue: q}\n",
			"wf.yaml:3:5: steps[0].id: required"},
		{"DuplicateID", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n  - id: a\n    task: {queue: q}\n",
			"wf.yaml:5:9: step \"a\": id: duplicate step id (also at line 3)"},
		{"InvalidID", "workflow: x\nsteps:\n  - id: a.b\n    task: {queue: q}\n",
			"wf.yaml:3:9: step \"a.b\": id: invalid id \"a.b\": use letters, digits, '_' and '-', starting with a letter or digit"},
		{"UnknownAfter", "workflow: x\nsteps:\n  - id: label\n    task: {queue: q}\n  - id: ship\n    after: [label, labl]\n    task: {queue: q}\n",
			"wf.yaml:6:20: step \"ship\": after: unknown step \"labl\" (did you mean \"label\"?)"},
		{"UnknownOnError", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError: nope\n",
			"wf.yaml:5:14: step \"a\": onError: unknown step \"nope\""},
		{"UnknownOnTimeout", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    timeout: 1s\n    onTimeout: [nope]\n",
			"wf.yaml:6:17: step \"a\": onTimeout: unknown step \"nope\""},
		{"SelfAfter", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n  - id: b\n    after: [a, b]\n    task: {queue: q}\n",
			"wf.yaml:6:16: step \"b\": after: step \"b\" depends on itself"},
		{"SelfOnError", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError: a\n",
			"wf.yaml:5:14: step \"a\": onError: step \"a\" cannot be its own error handler"},
		{"DuplicateAfter", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n  - id: b\n    after: [a, a]\n    task: {queue: q}\n",
			"wf.yaml:6:16: step \"b\": after: step \"a\" is listed twice"},
		{"Cycle", "workflow: x\nsteps:\n  - id: start\n    task: {queue: q}\n  - id: a\n    after: [start, c]\n    task: {queue: q}\n  - id: b\n    after: a\n    task: {queue: q}\n  - id: c\n    after: b\n    task: {queue: q}\n",
			"wf.yaml:6:12: step \"a\": after: dependency cycle: \"a\" comes after \"c\", \"c\" after \"b\", \"b\" after \"a\""},
		{"NoKind", "workflow: x\nsteps:\n  - id: a\n",
			"wf.yaml:3:5: step \"a\": the step does nothing: give it one of task, http, timer, receive, human or workflow"},
		{"TwoKinds", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    timer: {duration: 1s}\n",
			"wf.yaml:3:5: step \"a\": the step has several kinds (task, timer): give it exactly one"},
		{"BadCEL", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    when: input.vip ==\n",
			"wf.yaml:5:11: step \"a\": when: invalid expression at column 13: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}"},
		{"UndeclaredCEL", "workflow: x\nidempotencyKey: inptu.orderId\nsteps:\n  - id: a\n    task: {queue: q}\n",
			"wf.yaml:2:17: idempotencyKey: invalid expression at column 1: undeclared reference to 'inptu'"},
		{"NonBoolWhen", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    when: '\"yes\"'\n",
			"wf.yaml:5:11: step \"a\": when: expression must give a bool, not string"},
		{"NonStringKey", "workflow: x\nbusinessKey: 1 + 2\nsteps:\n  - id: a\n    task: {queue: q}\n",
			"wf.yaml:2:14: businessKey: expression must give a string, not int"},
		{"BadDuration", "workflow: x\ntimeout: 5 minutes\nsteps:\n  - id: a\n    task: {queue: q}\n    timeout: 30\n",
			"wf.yaml:2:10: timeout: invalid duration \"5 minutes\" (use a Go duration such as 90s or 1h30m, or ISO 8601 such as PT2H or P7D)\n" +
				"wf.yaml:6:14: step \"a\": timeout: must be a duration with a unit, such as 30s or PT30S, not a bare number"},
		{"BadISODuration", "workflow: x\nsteps:\n  - id: a\n    timer: {duration: P1M}\n",
			"wf.yaml:4:23: step \"a\": timer.duration: invalid ISO 8601 duration \"P1M\": years and months have no fixed length; use days (D) or weeks (W)"},
		{"NegativeDuration", "workflow: x\nsteps:\n  - id: a\n    timer: {duration: -5s}\n",
			"wf.yaml:4:23: step \"a\": timer.duration: invalid duration \"-5s\": must not be negative"},
		{"MaxAttempts", "workflow: x\nretry: {maxAttempts: 0}\nsteps:\n  - id: a\n    task: {queue: q}\n",
			"wf.yaml:2:22: retry.maxAttempts: must be at least 1, got 0"},
		{"BackoffFactor", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    retry: {backoffFactor: 0.5}\n",
			"wf.yaml:5:28: step \"a\": retry.backoffFactor: must be between 1 and 1000000, got 0.5"},
		{"Jitter", "workflow: x\nretry:\n  jitter: 1.5\nsteps:\n  - id: a\n    task: {queue: q}\n",
			"wf.yaml:3:11: retry.jitter: must be between 0 and 1, got 1.5"},
		{"MaxIntervalBelowInitial", "workflow: x\nretry: {initialInterval: 10s, maxInterval: 5s}\nsteps:\n  - id: a\n    task: {queue: q}\n",
			"wf.yaml:2:44: retry.maxInterval: maxInterval (5s) is less than initialInterval (10s)"},
		{"OnFailure", "workflow: x\nonFailure: retry\nsteps:\n  - id: a\n    task: {queue: q}\n",
			"wf.yaml:2:12: onFailure: unknown mode \"retry\" (use fail, review or compensate)"},
		{"Unreachable", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n  - id: e1\n    task: {queue: q}\n  - id: e2\n    after: e1\n    task: {queue: q}\n    onError: e1\n",
			"wf.yaml:5:5: step \"e1\": unreachable: no after, onError or onTimeout path leads here from a step the workflow starts with\n" +
				"wf.yaml:7:5: step \"e2\": unreachable: no after, onError or onTimeout path leads here from a step the workflow starts with"},
		{"CompensateWithAfter", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    compensate:\n      id: undo\n      after: a\n      onError: a\n      task: {queue: q}\n",
			"wf.yaml:6:11: step \"a\": compensate.id: not allowed in a compensation step\n" +
				"wf.yaml:7:14: step \"a\": compensate.after: not allowed in a compensation step\n" +
				"wf.yaml:8:16: step \"a\": compensate.onError: not allowed in a compensation step"},
		{"WrongTypes", "workflow: [x]\nsteps:\n  - id: a\n    task: {queue: q}\n    retry: {maxAttempts: many, jitter: .inf}\n    waitEffects: maybe\n",
			"wf.yaml:1:11: workflow: must be a string\n" +
				"wf.yaml:5:26: step \"a\": retry.maxAttempts: must be an integer\n" +
				"wf.yaml:5:40: step \"a\": retry.jitter: must be a finite number\n" +
				"wf.yaml:6:18: step \"a\": waitEffects: must be true or false"},
		{"TaskBoth", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q, handler: h}\n  - id: b\n    task: {command: c}\n",
			"wf.yaml:4:11: step \"a\": task: set handler or queue, not both\n" +
				"wf.yaml:6:11: step \"b\": task: set handler (a Go handler) or queue (a worker queue)"},
		{"HTTP", "workflow: x\nsteps:\n  - id: a\n    http: {method: FETCH, url: 'ftp://x', headers: {'Bad Name': v}}\n",
			"wf.yaml:4:20: step \"a\": http.method: unknown method \"FETCH\" (use one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS)\n" +
				"wf.yaml:4:32: step \"a\": http.url: must be an absolute http or https URL, got \"ftp://x\"\n" +
				"wf.yaml:4:65: step \"a\": http.headers.Bad Name: invalid header name \"Bad Name\""},
		{"Timer", "workflow: x\nsteps:\n  - id: a\n    timer: {duration: 1s, until: 'timestamp(\"2030-01-01T00:00:00Z\")'}\n  - id: b\n    timer: {}\n  - id: c\n    timer: {until: '42'}\n",
			"wf.yaml:4:12: step \"a\": timer: set duration or until, not both\n" +
				"wf.yaml:6:12: step \"b\": timer: set duration (how long to wait) or until (a deadline)\n" +
				"wf.yaml:8:20: step \"c\": timer.until: expression must give a timestamp or string, not int"},
		{"Receive", "workflow: x\nsteps:\n  - id: a\n    receive: {correlate: input.id}\n    onTimeout: b\n  - id: b\n    task: {queue: q}\n",
			"wf.yaml:4:14: step \"a\": receive.message: required\n" +
				"wf.yaml:5:16: step \"a\": onTimeout: the step has no timeout (set timeout, or receive.timeout)"},
		{"Human", "workflow: x\nsteps:\n  - id: a\n    human: {form: {type: nope}}\n  - id: b\n    human: {role: r, form: [1]}\n",
			"wf.yaml:4:12: step \"a\": human.role: required\n" +
				"wf.yaml:4:19: step \"a\": human.form: invalid JSON Schema: \"urn:ordo:form#\" is not valid against metaschema: jsonschema validation failed with 'https://json-schema.org/draft/2020-12/schema#' - at '': 'allOf' failed - at '/type': 'anyOf' failed - at '/type': value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string' - at '/type': got string, want array\n" +
				"wf.yaml:6:28: step \"b\": human.form: must be a JSON Schema object"},
		{"Child", "workflow: x\nsteps:\n  - id: a\n    workflow: {input: 'input.'}\n",
			"wf.yaml:4:15: step \"a\": workflow.name: required\n" +
				"wf.yaml:4:23: step \"a\": workflow.input: invalid expression at column 7: Syntax error: no viable alternative at input '.'"},
		{"StageName", "workflow: x\nstages:\n  - steps: [{id: a, task: {queue: q}}]\n  - name: S\n    steps: [{id: b, task: {queue: q}}]\n  - name: S\n",
			"wf.yaml:3:5: stages[0].name: required\n" +
				"wf.yaml:6:11: stages[2].name: duplicate stage name \"S\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, parseErr(t, tt.src))
		})
	}
}

// update rewrites the golden files of TestParse_InvalidFiles.
var update = flag.Bool("update", false, "rewrite testdata/invalid/*.err")

func TestParse_InvalidFiles(t *testing.T) {
	t.Parallel()

	files, err := filepath.Glob("testdata/invalid/*.*")
	require.NoError(t, err)
	for _, file := range files {
		if filepath.Ext(file) == ".err" {
			continue
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			data, err := os.ReadFile(file)
			require.NoError(t, err)
			_, err = Parse(data, filepath.Base(file))
			require.ErrorIs(t, err, ordotype.ErrInvalid)
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, filepath.Ext(file)) + ".err"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err)
			require.Equal(t, string(want), got)
		})
	}
}
