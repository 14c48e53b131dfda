package ordoswm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/ordoswm"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func readPizza(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "deliver-pizza.json"))
	require.NoError(t, err)
	return data
}

func TestConvert_DeliverPizza(t *testing.T) {
	t.Parallel()

	data := readPizza(t)
	require.True(t, ordoswm.IsTemplate(data))
	def, err := ordoswm.Convert(data)
	require.NoError(t, err)
	require.Equal(t, "deliver-pizza", def.Name())

	// The converted definition is a valid Ordo template, with the same
	// hash when read back.
	w, err := definition.Parse(def.JSON(), "")
	require.NoError(t, err)
	require.Equal(t, def.Hash(), w.Hash)
	require.False(t, ordoswm.IsTemplate(def.JSON()), "an Ordo definition is not taken for a template")

	require.Equal(t, definition.FailureReview, w.OnFailure)
	require.NotNil(t, w.IdempotencyKey)
	require.NotNil(t, w.BusinessKey)

	// Stages are serial; parent_task are the dependencies inside a stage.
	after := map[string][]string{}
	stage := map[string]string{}
	for _, s := range w.Steps {
		if len(s.After) > 0 {
			after[s.ID] = s.After
		}
		stage[s.ID] = s.Stage
	}
	require.Equal(t, map[string][]string{
		"make_food":        {"confirm_order"},
		"assign_executive": {"confirm_order"},
		"confirm_delivery": {"make_food", "assign_executive"},
		"deliver_food":     {"make_food", "assign_executive", "confirm_delivery"},
	}, after)
	require.Equal(t, map[string]string{
		"confirm_order": "ORDER", "make_food": "PREPARE", "assign_executive": "PREPARE",
		"confirm_delivery": "PREPARE", "deliver_food": "DELIVER",
	}, stage)

	// SERVICE tasks are queue tasks; the command is the task's name.
	confirm := w.Step("confirm_order")
	require.Equal(t, definition.KindTask, confirm.Kind)
	require.Equal(t, &definition.TaskSpec{Queue: "confirm_order_queue", Command: "confirm_order"}, confirm.Task)
	require.JSONEq(t, `{"business_status":"ORDER CONFIRMED","component_name":"ITALIAN","stage_name":"ORDER",
		"task_name":"confirm_order","task_queue":"confirm_order_queue","task_type":"SERVICE"}`, string(confirm.Params))

	// HUMAN tasks are human steps for the role in assigned_to, which is
	// passed through with the other extra fields.
	deliver := w.Step("deliver_food")
	require.Equal(t, definition.KindHuman, deliver.Kind)
	require.Equal(t, "delivery_executive", deliver.Human.Role)
	require.JSONEq(t, `{"assigned_to":"delivery_executive","business_status":"FOOD DELIVERED","component_name":"ITALIAN",
		"stage_name":"DELIVER","task_name":"deliver_food","task_queue":"deliver_food_queue","task_type":"HUMAN"}`, string(deliver.Params))

	// The whole conversion, as canonical Ordo JSON (docs/swm.md shows it).
	golden := filepath.Join("testdata", "deliver-pizza.ordo.json")
	var pretty bytes.Buffer
	require.NoError(t, json.Indent(&pretty, def.JSON(), "", "  "))
	pretty.WriteByte('\n')
	if *update {
		require.NoError(t, os.WriteFile(golden, pretty.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	require.Equal(t, string(want), pretty.String())
}

func TestConvert_StageOrderAndShapes(t *testing.T) {
	t.Parallel()

	// Stages run in stage_order, not file order; parent_task may be a
	// single string; task_type defaults to SERVICE; extra fields of any
	// JSON type are passed through exactly.
	src := `{
		"workflow_name": "  Refund: Card & Cash v2 ",
		"stages": [
			{"stage_name": "LATE", "stage_order": 2, "tasks": [{"task_name": "b", "task_queue": "qb", "parent_task": null}]},
			{"stage_name": "EARLY", "stage_order": 1.5, "tasks": [
				{"task_name": "a", "task_queue": "qa", "priority": 3.10, "tags": ["x"], "meta": {"k": null}},
				{"task_name": "a2", "task_queue": "qa", "parent_task": "a"}
			]}
		]
	}`
	def, err := ordoswm.Convert([]byte(src))
	require.NoError(t, err)
	require.Equal(t, "refund-card-cash-v2", def.Name())
	w, err := definition.Parse(def.JSON(), "")
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, w.Step("a2").After)
	require.Equal(t, []string{"a", "a2"}, w.Step("b").After)
	require.Equal(t, "EARLY", w.Step("a").Stage)
	require.JSONEq(t, `{"meta":{"k":null},"priority":3.1,"stage_name":"EARLY","tags":["x"],"task_name":"a","task_queue":"qa","task_type":"SERVICE"}`, string(w.Step("a").Params))
}

func TestParseTemplate_Problems(t *testing.T) {
	t.Parallel()

	tests := map[string]struct {
		src  string
		want []string
	}{
		"NotJSON":    {`workflow_name: x`, []string{"an SWM template must be a JSON object"}},
		"NoStages":   {`{"workflow_name": "x"}`, []string{"stages: required"}},
		"StagesType": {`{"workflow_name": "x", "stages": {}}`, []string{"stages: must be a list of objects"}},
		"Everything": {`{
			"workflow_name": 7,
			"stages": [
				{"stage_name": "A", "stage_order": 1, "tasks": [
					{"task_name": "t1", "task_type": "ROBOT", "task_queue": "q"},
					{"task_name": "t2"},
					{"task_queue": "q"},
					{"task_name": "t3", "task_queue": "q", "parent_task": ["nope", "t3", "t9b"]},
					{"task_name": "bad name", "task_queue": "q"}
				]},
				{"stage_name": "A", "stage_order": 2, "tasks": [
					{"task_name": "t1", "task_queue": 5},
					{"task_name": "t9", "task_queue": "q", "parent_task": 4}
				]},
				{"stage_name": "C", "stage_order": 3, "tasks": [{"task_name": "t9b", "task_queue": "q"}]},
				{"stage_order": 4},
				{"stage_name": "D", "stage_order": "5"}
			]}`, []string{
			"workflow_name: must be a string",
			`stage "A", task "t1": task_type: must be SERVICE or HUMAN, not "ROBOT"`,
			`stage "A", task "t2": task_queue: required`,
			`stage "A", tasks[2]: task_name: required`,
			`stage "A", task "t1": task_queue: must be a string`,
			`stage "D": stage_order: must be a number`,
			`stage "A", task "t9": parent_task: must be a list of task names`,
			`stages[3]: stage_name: required`,
			`stage "A": stage_name is used by two stages`,
			`stage "A", task "t1": task_name is also used in stage "A"`,
			`stage "A", task "bad name": task_name must be letters, digits, _ and -`,
			`stage "A", task "t3": parent_task: unknown task "nope"`,
			`stage "A", task "t3": parent_task: a task cannot be its own parent`,
			`stage "A", task "t3": parent_task: "t9b" is in a later stage ("C"); stages run in order`,
		}},
		"SomeOrders": {`{"workflow_name": "x", "stages": [{"stage_name": "A", "stage_order": 1}, {"stage_name": "B"}]}`,
			[]string{"stages: give every stage a stage_order, or none (1 of 2 have one)"}},
		"NoName": {`{"workflow_name": "!!!", "stages": [{"stage_name": "A"}]}`, []string{`workflow_name: "!!!" has no letters or digits`}},
		"HumanNoRole": {`{"workflow_name": "x", "stages": [{"stage_name": "A", "tasks": [{"task_name": "h", "task_type": "HUMAN"}]}]}`,
			[]string{`stage "A", task "h": a HUMAN task needs assigned_to (a role) or task_queue`}},
		"OrdoRefuses": {`{"workflow_name": "x", "stages": [{"stage_name": "A", "tasks": [
			{"task_name": "a", "task_queue": "q", "parent_task": ["b"]}, {"task_name": "b", "task_queue": "q", "parent_task": ["a"]}]}]}`,
			[]string{`step "a": after: dependency cycle`}},
		"TooLarge": {`{"workflow_name": "x", "stages": [], "pad": "` + strings.Repeat("x", ordoswm.MaxTemplateSize) + `"}`,
			[]string{"more than the limit of 1048576"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ordoswm.Convert([]byte(tt.src))
			require.Error(t, err)
			require.True(t, errors.Is(err, ordo.ErrInvalid), "%v", err)
			var ve *ordo.ValidationError
			require.ErrorAs(t, err, &ve)
			for _, w := range tt.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestIsTemplate(t *testing.T) {
	t.Parallel()

	for src, want := range map[string]bool{
		`{"workflow_name": "x", "stages": []}`:              true,
		`{"stages": [{"stage_name": "A"}]}`:                 true,
		`{"workflow": "x", "stages": [{"name": "A"}]}`:      false,
		`{"workflow": "x", "workflow_name": "y"}`:           false,
		"workflow: x\nsteps: [{id: a, task: {queue: q}}]\n": false,
		`{"stages": [{"name": "A"}]}`:                       false,
		`[1, 2]`:                                            false,
		``:                                                  false,
		`{"stages": "x"}`:                                   false,
	} {
		require.Equal(t, want, ordoswm.IsTemplate([]byte(src)), src)
	}
}

func TestWorkflowName(t *testing.T) {
	t.Parallel()

	for in, want := range map[string]string{
		"Deliver Pizza":          "deliver-pizza",
		"deliver_pizza.v2":       "deliver_pizza.v2",
		"  --Ünïcode  Flow!! ":   "n-code-flow",
		"___":                    "",
		strings.Repeat("a", 200): strings.Repeat("a", 128),
	} {
		require.Equal(t, want, ordoswm.WorkflowName(in), in)
	}
}
