package ordoswm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/internal/definition"
)

// Task types of an SWM template.
const (
	TaskService = "SERVICE"
	TaskHuman   = "HUMAN"
)

// MaxTemplateSize is the largest template [ParseTemplate] reads, in bytes:
// the limit of Ordo definitions.
const MaxTemplateSize = definition.MaxSourceSize

// BusinessRefNo is the input field that identifies an instance of a
// converted workflow: its idempotency key and business key.
const BusinessRefNo = "business_ref_no"

// Template is a Serverless Workflow Manager workflow template.
type Template struct {
	// WorkflowName is the template's workflow_name, e.g. "Deliver Pizza".
	WorkflowName string
	// ComponentName is its component_name, e.g. "ITALIAN". SWM's
	// StartWorkflow event names the template by it.
	ComponentName string
	// Stages are in stage_order.
	Stages []Stage
}

// Stage is a stage of a [Template].
type Stage struct {
	Name string
	// Order is the stage_order; stages run in increasing order.
	Order float64
	Tasks []Task
}

// Task is a task of a [Stage].
type Task struct {
	Name string
	// Parents are the parent_task names: the tasks that must complete
	// before this one starts.
	Parents []string
	Queue   string
	// Type is TaskService or TaskHuman.
	Type           string
	BusinessStatus string
	// Extra are the task's other fields, passed through to the worker.
	Extra map[string]json.RawMessage
}

// The fields of a template, a stage and a task that the conversion reads.
// Other fields of a task are passed through; other fields of the template
// and of a stage (such as a stored template's _id or version) are ignored.
var taskFields = []string{"task_name", "parent_task", "task_queue", "task_type", "business_status"}

// IsTemplate reports whether data looks like an SWM template rather than an
// Ordo definition: a JSON object with workflow_name, or with stages whose
// first stage has a stage_name, and without Ordo's workflow field.
func IsTemplate(data []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return false
	}
	if _, ordoName := top["workflow"]; ordoName {
		return false
	}
	if _, ok := top["workflow_name"]; ok {
		return true
	}
	var stages []map[string]json.RawMessage
	if json.Unmarshal(top["stages"], &stages) != nil || len(stages) == 0 {
		return false
	}
	_, ok := stages[0]["stage_name"]
	return ok
}

// problems collects what is wrong with a template.
type problems []ordo.ValidationProblem

func (p *problems) addf(format string, args ...any) {
	*p = append(*p, ordo.ValidationProblem{Message: fmt.Sprintf(format, args...)})
}

// err returns the problems as an *ordo.ValidationError, or nil.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &ordo.ValidationError{Problems: p}
}

// ParseTemplate reads an SWM template (JSON). Every problem is reported at
// once, each naming the stage and task it is in, as an
// [*ordo.ValidationError] (which matches [ordo.ErrInvalid]).
func ParseTemplate(data []byte) (*Template, error) {
	var ps problems
	if len(data) > MaxTemplateSize {
		ps.addf("template is %d bytes, more than the limit of %d", len(data), MaxTemplateSize)
		return nil, ps.err()
	}
	var top map[string]json.RawMessage
	if err := decode(data, &top); err != nil {
		ps.addf("an SWM template must be a JSON object: %v", err)
		return nil, ps.err()
	}
	if top == nil {
		ps.addf("an SWM template must be a JSON object, not null")
		return nil, ps.err()
	}
	t := &Template{}
	t.WorkflowName = ps.str(top, "workflow_name", "", true)
	t.ComponentName = ps.str(top, "component_name", "", false)
	if _, ok := top["stages"]; !ok {
		ps.addf("stages: required (a list of stages, each with stage_name, stage_order and tasks)")
		return nil, ps.err()
	}
	var stages []map[string]json.RawMessage
	if err := decode(top["stages"], &stages); err != nil {
		ps.addf("stages: must be a list of objects: %v", err)
		return nil, ps.err()
	}
	if len(stages) == 0 {
		ps.addf("stages: the template has no stages")
	}
	ordered := 0
	for i, raw := range stages {
		where := fmt.Sprintf("stages[%d]", i)
		if raw == nil {
			ps.addf("%s: must be an object, not null", where)
			continue
		}
		st := Stage{Name: ps.str(raw, "stage_name", where, true)}
		if st.Name != "" {
			where = fmt.Sprintf("stage %q", st.Name)
		}
		if o, ok := raw["stage_order"]; ok && string(o) != "null" {
			ordered++
			if err := decode(o, &st.Order); err != nil {
				ps.addf("%s: stage_order: must be a number", where)
			}
		}
		if tr, ok := raw["tasks"]; ok && string(tr) != "null" {
			var tasks []map[string]json.RawMessage
			if err := decode(tr, &tasks); err != nil {
				ps.addf("%s: tasks: must be a list of objects: %v", where, err)
			}
			for j, traw := range tasks {
				st.Tasks = append(st.Tasks, ps.task(traw, fmt.Sprintf("%s, tasks[%d]", where, j), where))
			}
		}
		t.Stages = append(t.Stages, st)
	}
	if ordered > 0 && ordered < len(stages) {
		ps.addf("stages: give every stage a stage_order, or none (%d of %d have one)", ordered, len(stages))
	}
	if ordered == len(stages) {
		// Stages run in stage_order; equal orders keep the file's order.
		slices.SortStableFunc(t.Stages, func(a, b Stage) int {
			switch {
			case a.Order < b.Order:
				return -1
			case a.Order > b.Order:
				return 1
			}
			return 0
		})
	}
	ps.checkNames(t)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return t, nil
}

// task reads one task.
func (ps *problems) task(raw map[string]json.RawMessage, where, stage string) Task {
	if raw == nil {
		ps.addf("%s: must be an object, not null", where)
		return Task{}
	}
	t := Task{Name: ps.str(raw, "task_name", where, true)}
	if t.Name != "" {
		where = fmt.Sprintf("%s, task %q", stage, t.Name)
	}
	if p, ok := raw["parent_task"]; ok && string(p) != "null" {
		if err := decode(p, &t.Parents); err != nil {
			var one string
			if decode(p, &one) == nil {
				t.Parents = []string{one}
			} else {
				ps.addf("%s: parent_task: must be a list of task names", where)
			}
		}
	}
	t.Type = strings.ToUpper(ps.str(raw, "task_type", where, false))
	switch t.Type {
	case "":
		t.Type = TaskService
	case TaskService, TaskHuman:
	default:
		ps.addf("%s: task_type: must be SERVICE or HUMAN, not %q", where, t.Type)
	}
	t.Queue = ps.str(raw, "task_queue", where, t.Type == TaskService)
	t.BusinessStatus = ps.str(raw, "business_status", where, false)
	for k, v := range raw {
		if !slices.Contains(taskFields, k) {
			if t.Extra == nil {
				t.Extra = map[string]json.RawMessage{}
			}
			t.Extra[k] = v
		}
	}
	return t
}

// str reads a string field. A missing or null field is "", a problem when
// required.
func (ps *problems) str(m map[string]json.RawMessage, field, where string, required bool) string {
	prefix := field
	if where != "" {
		prefix = where + ": " + field
	}
	raw, ok := m[field]
	if !ok || string(raw) == "null" {
		if required {
			ps.addf("%s: required", prefix)
		}
		return ""
	}
	var s string
	if err := decode(raw, &s); err != nil {
		ps.addf("%s: must be a string", prefix)
		return ""
	}
	s = strings.TrimSpace(s)
	if s == "" && required {
		ps.addf("%s: must not be empty", prefix)
	}
	return s
}

// checkNames checks that stage and task names are unique and usable as
// Ordo stage names and step ids, and that parent tasks exist in the same
// or an earlier stage.
func (ps *problems) checkNames(t *Template) {
	stageOf := map[string]int{} // task name → index of its stage
	stages := map[string]bool{}
	for i, st := range t.Stages {
		if st.Name != "" {
			if stages[st.Name] {
				ps.addf("stage %q: stage_name is used by two stages", st.Name)
			}
			stages[st.Name] = true
			if len(st.Name) > 128 {
				ps.addf("stage %q: stage_name is longer than 128 characters", st.Name)
			}
		}
		for _, task := range st.Tasks {
			if task.Name == "" {
				continue
			}
			if j, dup := stageOf[task.Name]; dup {
				ps.addf("stage %q, task %q: task_name is also used in stage %q: task names must be unique in a template", st.Name, task.Name, t.Stages[j].Name)
				continue
			}
			stageOf[task.Name] = i
			if !stepIDRe(task.Name) {
				ps.addf("stage %q, task %q: task_name must be letters, digits, _ and -, starting with a letter or digit, at most 128 characters (it is the step id)", st.Name, task.Name)
			}
		}
	}
	for i, st := range t.Stages {
		for _, task := range st.Tasks {
			for _, p := range task.Parents {
				j, ok := stageOf[p]
				switch {
				case !ok:
					ps.addf("stage %q, task %q: parent_task: unknown task %q", st.Name, task.Name, p)
				case p == task.Name:
					ps.addf("stage %q, task %q: parent_task: a task cannot be its own parent", st.Name, task.Name)
				case j > i:
					ps.addf("stage %q, task %q: parent_task: %q is in a later stage (%q); stages run in order", st.Name, task.Name, p, t.Stages[j].Name)
				}
			}
		}
	}
}

// stepIDRe reports whether s is a valid Ordo step id.
func stepIDRe(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case (r == '_' || r == '-') && i > 0:
		default:
			return false
		}
	}
	return true
}

// decode unmarshals JSON, keeping numbers exact.
func decode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("unexpected data after the JSON value")
	}
	return nil
}

// WorkflowName turns an SWM workflow_name into an Ordo workflow name:
// lower case, with every run of characters other than letters, digits,
// '.', '_' and '-' made one '-' ("Deliver Pizza" is "deliver-pizza"). It
// returns "" when nothing is left.
func WorkflowName(swmName string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(swmName) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '.' || r == '_' || r == '-' {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	name := strings.TrimLeft(b.String(), "._-")
	if len(name) > 128 {
		name = strings.TrimRight(name[:128], "._-")
	}
	return name
}

// spec returns the Ordo definition of the template as written, before
// compilation. Every step's params carry the fields SWM sends with a task
// (see the package documentation).
func (t *Template) spec() (*definition.Spec, error) {
	name := WorkflowName(t.WorkflowName)
	if name == "" {
		return nil, (problems{{Message: fmt.Sprintf("workflow_name: %q has no letters or digits to name the workflow with", t.WorkflowName)}}).err()
	}
	desc := fmt.Sprintf("Serverless Workflow Manager template %q", t.WorkflowName)
	if t.ComponentName != "" {
		desc += fmt.Sprintf(" (component %s)", t.ComponentName)
	}
	spec := &definition.Spec{
		Workflow:       name,
		Description:    desc,
		IdempotencyKey: "input." + BusinessRefNo,
		BusinessKey:    "input." + BusinessRefNo,
		OnFailure:      definition.FailureReview,
	}
	for _, st := range t.Stages {
		stage := definition.SpecStage{Name: st.Name}
		for _, task := range st.Tasks {
			step := definition.SpecStep{ID: task.Name}
			if len(task.Parents) > 0 {
				step.After = definition.StringList(task.Parents)
			}
			switch task.Type {
			case TaskHuman:
				role := task.Queue
				if r, ok := task.Extra["assigned_to"]; ok {
					var s string
					if decode(r, &s) == nil && strings.TrimSpace(s) != "" {
						role = strings.TrimSpace(s)
					}
				}
				if role == "" {
					return nil, (problems{{Message: fmt.Sprintf("stage %q, task %q: a HUMAN task needs assigned_to (a role) or task_queue", st.Name, task.Name)}}).err()
				}
				step.Human = &definition.SpecHuman{Role: role}
			default:
				step.Task = &definition.TaskSpec{Queue: task.Queue, Command: task.Name}
			}
			params, err := t.params(st, task)
			if err != nil {
				return nil, err
			}
			step.Params = params
			stage.Steps = append(stage.Steps, step)
		}
		spec.Stages = append(spec.Stages, stage)
	}
	return spec, nil
}

// params builds a step's params: what SWM puts in the task's StartTask
// message, apart from business_ref_no and event_name.
func (t *Template) params(st Stage, task Task) (json.RawMessage, error) {
	m := make(map[string]any, len(task.Extra)+6)
	for _, k := range slices.Sorted(maps.Keys(task.Extra)) {
		m[k] = task.Extra[k]
	}
	m["stage_name"] = st.Name
	m["task_name"] = task.Name
	m["task_type"] = task.Type
	if t.ComponentName != "" {
		m["component_name"] = t.ComponentName
	}
	if task.Queue != "" {
		m["task_queue"] = task.Queue
	}
	if task.BusinessStatus != "" {
		m["business_status"] = task.BusinessStatus
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, (problems{{Message: fmt.Sprintf("stage %q, task %q: %v", st.Name, task.Name, err)}}).err()
	}
	return b, nil
}

// Definition converts the template into a validated Ordo definition.
// Errors: an [*ordo.ValidationError].
func (t *Template) Definition() (*ordo.Definition, error) {
	spec, err := t.spec()
	if err != nil {
		return nil, err
	}
	w, err := definition.Compile(spec)
	if err != nil {
		return nil, err
	}
	return ordo.ParseDefinition(w.Source, "")
}

// Convert parses an SWM template and converts it into an Ordo definition.
// Errors: an [*ordo.ValidationError] listing every problem.
func Convert(data []byte) (*ordo.Definition, error) {
	t, err := ParseTemplate(data)
	if err != nil {
		return nil, err
	}
	return t.Definition()
}
