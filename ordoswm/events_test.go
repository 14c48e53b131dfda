package ordoswm_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoswm"
)

// fakeTasks is a hand-made ordoswm.Tasks that records what it is asked to
// do; the engine's own is tested end to end in the server package.
type fakeTasks struct {
	open      []ordoswm.OpenTask
	completed []completion
	failed    []string
	err       error
}

type completion struct {
	task          ordoswm.OpenTask
	output, state string
}

var _ ordoswm.Tasks = (*fakeTasks)(nil)

func (f *fakeTasks) OpenTasks(context.Context, string) ([]ordoswm.OpenTask, error) {
	return f.open, nil
}

func (f *fakeTasks) Complete(_ context.Context, t ordoswm.OpenTask, output, state json.RawMessage) error {
	f.completed = append(f.completed, completion{t, string(output), string(state)})
	return f.err
}

func (f *fakeTasks) Fail(_ context.Context, t ordoswm.OpenTask, message string) error {
	f.failed = append(f.failed, t.Step+": "+message)
	return f.err
}

func openEngine(t *testing.T) *ordo.Engine {
	t.Helper()
	ctx := context.Background()
	eng, err := ordo.Open(ctx, ordo.SQLite(filepath.Join(t.TempDir(), "ordo.db")), &ordo.Config{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, eng.Close(context.WithoutCancel(ctx))) })
	return eng
}

const takeawaySWM = `{"workflow_name": "Pick Up Pizza", "component_name": "TAKEAWAY", "stages": [
	{"stage_name": "ORDER", "stage_order": 1, "tasks": [
		{"task_name": "confirm_order", "task_queue": "confirm_order_queue", "task_type": "SERVICE", "business_status": "ORDER CONFIRMED"}]},
	{"stage_name": "PREPARE", "stage_order": 2, "tasks": [
		{"task_name": "make_food", "task_queue": "make_food_queue"}]}]}`

func handle(t *testing.T, h *ordoswm.Events, event string) (*ordoswm.Result, error) {
	t.Helper()
	ev, err := ordoswm.ParseEvent([]byte(event))
	require.NoError(t, err)
	return h.Handle(context.Background(), ev)
}

func TestEvents_TaskEventsUseTheOpenTask(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := openEngine(t)
	def, err := ordoswm.Convert([]byte(takeawaySWM))
	require.NoError(t, err)
	_, err = eng.Deploy(ctx, def)
	require.NoError(t, err)

	tasks := &fakeTasks{}
	h := &ordoswm.Events{Engine: eng, Tasks: tasks}
	res, err := handle(t, h, `{"event_name": "StartWorkflow", "business_ref_no": "R-1", "component_name": "TAKEAWAY"}`)
	require.NoError(t, err)
	require.Equal(t, ordoswm.OutcomeStarted, res.Outcome)
	id := res.InstanceID
	completed := `{"event_name": "TaskCompleted", "business_ref_no": "R-1", "component_name": "TAKEAWAY", "task_name": "confirm_order", "note": "ok"}`

	// No open task yet for the step (between two transitions): refused.
	_, err = handle(t, h, completed)
	require.ErrorIs(t, err, ordoswm.ErrTaskState)

	// A task no worker has taken: refused, nothing done.
	tasks.open = []ordoswm.OpenTask{{ID: 7, Step: "make_food", Queue: "make_food_queue", Claim: 3}, {ID: 5, Step: "confirm_order", Queue: "confirm_order_queue"}}
	_, err = handle(t, h, completed)
	require.ErrorIs(t, err, ordoswm.ErrTaskState)
	require.ErrorContains(t, err, "no worker has taken the task from queue confirm_order_queue yet")
	require.Empty(t, tasks.completed)

	// Taken: completed with the worker's claim, the event's other fields
	// as output, and the task's business_status in the state.
	tasks.open[1].Claim = 2
	res, err = handle(t, h, completed)
	require.NoError(t, err)
	require.Equal(t, ordoswm.OutcomeCompleted, res.Outcome)
	require.Equal(t, id, res.InstanceID)
	require.Len(t, tasks.completed, 1)
	require.Equal(t, ordoswm.OpenTask{ID: 5, Step: "confirm_order", Queue: "confirm_order_queue", Claim: 2}, tasks.completed[0].task)
	require.JSONEq(t, `{"note": "ok"}`, tasks.completed[0].output)
	require.JSONEq(t, `{"business_status": "ORDER CONFIRMED"}`, tasks.completed[0].state)

	// TaskFailed fails it with the reason; a default reason otherwise.
	_, err = handle(t, h, `{"event_name": "TaskFailed", "business_ref_no": "R-1", "task_name": "confirm_order", "reason": "card declined"}`)
	require.NoError(t, err)
	_, err = handle(t, h, `{"event_name": "TaskFailed", "business_ref_no": "R-1", "workflow_name": "Pick Up Pizza", "task_name": "confirm_order"}`)
	require.NoError(t, err)
	require.Equal(t, []string{"confirm_order: card declined", "confirm_order: the task reported TaskFailed"}, tasks.failed)

	// A human task needs no claim.
	tasks.open[1] = ordoswm.OpenTask{ID: 5, Step: "confirm_order", Human: true}
	_, err = handle(t, h, completed)
	require.NoError(t, err)
	require.Len(t, tasks.completed, 2)

	// The engine's refusal comes back as it is.
	tasks.err = errors.New("store down")
	_, err = handle(t, h, completed)
	require.ErrorContains(t, err, "store down")

	// Without Tasks, task events say so.
	_, err = handle(t, &ordoswm.Events{Engine: eng}, completed)
	require.ErrorIs(t, err, ordoswm.ErrNoTasks)
}

func TestEvents_AmbiguousComponent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := openEngine(t)
	for _, name := range []string{"Pick Up Pizza", "Pick Up Pasta"} {
		src := []byte(`{"workflow_name": "` + name + `", "component_name": "TAKEAWAY", "stages": [{"stage_name": "A", "tasks": [{"task_name": "a", "task_queue": "q"}]}]}`)
		def, err := ordoswm.Convert(src)
		require.NoError(t, err)
		_, err = eng.Deploy(ctx, def)
		require.NoError(t, err)
	}
	h := &ordoswm.Events{Engine: eng}
	_, err := handle(t, h, `{"event_name": "StartWorkflow", "business_ref_no": "R-1", "component_name": "TAKEAWAY"}`)
	var ee *ordoswm.EventError
	require.ErrorAs(t, err, &ee)
	require.Equal(t, "component_name", ee.Field)
	require.ErrorContains(t, err, `component "TAKEAWAY" has several workflows (pick-up-pasta, pick-up-pizza): name one with workflow_name`)

	// Named, both start; a task event then needs the name too.
	for _, name := range []string{"Pick Up Pizza", "Pick Up Pasta"} {
		res, err := handle(t, h, `{"event_name": "StartWorkflow", "business_ref_no": "R-1", "workflow_name": "`+name+`"}`)
		require.NoError(t, err)
		require.Equal(t, ordoswm.OutcomeStarted, res.Outcome)
	}
	_, err = handle(t, h, `{"event_name": "TaskPending", "business_ref_no": "R-1", "component_name": "TAKEAWAY", "task_name": "a"}`)
	require.ErrorAs(t, err, &ee)
	require.Equal(t, "business_ref_no", ee.Field)
	require.ErrorContains(t, err, "name the workflow with workflow_name")
	res, err := handle(t, h, `{"event_name": "TaskPending", "business_ref_no": "R-1", "workflow_name": "pick-up-pasta", "task_name": "a"}`)
	require.NoError(t, err)
	require.Equal(t, ordoswm.OutcomeUnchanged, res.Outcome)
	require.Equal(t, "pick-up-pasta", res.Workflow)
}
