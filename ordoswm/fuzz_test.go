package ordoswm_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoswm"
)

// FuzzConvert checks that no template makes Convert panic, that every
// error is an *ordo.ValidationError, and that what it accepts is a valid
// Ordo definition. The seeds run in every go test.
func FuzzConvert(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("testdata", "deliver-pizza.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	for _, s := range []string{
		`{}`, `null`, `[]`, `{"workflow_name": "x", "stages": null}`,
		`{"workflow_name": "x", "stages": [{"stage_name": "A", "tasks": [{"task_name": "a", "task_queue": "q", "parent_task": "a"}]}]}`,
		`{"workflow_name": "x", "stages": [{"stage_name": "A", "tasks": [{"task_name": "h", "task_type": "human", "assigned_to": 5}]}]}`,
		`{"workflow_name": "x", "stages": [{"stage_name": "A", "stage_order": 1e400}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		def, err := ordoswm.Convert(data)
		if err != nil {
			var ve *ordo.ValidationError
			if !errors.As(err, &ve) || len(ve.Problems) == 0 || !errors.Is(err, ordo.ErrInvalid) {
				t.Fatalf("Convert returned %T %v, want an *ordo.ValidationError", err, err)
			}
			return
		}
		again, err := ordo.ParseDefinition(def.JSON(), "")
		if err != nil {
			t.Fatalf("the conversion does not parse: %v\n%s", err, def.JSON())
		}
		if again.Hash() != def.Hash() {
			t.Fatalf("the conversion parses to another hash")
		}
	})
}

// FuzzParseEvent checks that no event makes ParseEvent panic and that every
// error is an *EventError.
func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		`{"business_ref_no": "ORDER-001", "component_name": "ITALIAN", "event_name": "StartWorkflow"}`,
		`{"business_ref_no": "ORDER-001", "component_name": "ITALIAN", "event_name": "TaskCompleted", "stage_name": "ORDER", "task_name": "confirm_order", "task_type": "SERVICE"}`,
		`{"business_ref_no": 1, "event_name": "TaskFailed"}`, `{}`, `null`, `"x"`, `{"event_name": "TaskPending", "business_ref_no": "r", "task_name": "t", "task_type": "robot"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ordoswm.ParseEvent(data)
		if err != nil {
			var ee *ordoswm.EventError
			if !errors.As(err, &ee) || !errors.Is(err, ordo.ErrInvalid) {
				t.Fatalf("ParseEvent returned %T %v, want an *EventError", err, err)
			}
			return
		}
		if ev.Name == "" || ev.BusinessRefNo == "" {
			t.Fatalf("ParseEvent accepted an event without a name or business_ref_no: %+v", ev)
		}
	})
}
