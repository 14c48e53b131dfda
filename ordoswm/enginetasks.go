package ordoswm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ordoflow/ordo"
)

// EngineTasks returns the [Tasks] of an engine's remote task API:
// [ordo.Engine.ListTasks], [ordo.Engine.CompleteTask] and
// [ordo.Engine.FailTask].
func EngineTasks(e *ordo.Engine) Tasks { return engineTasks{e} }

type engineTasks struct{ e *ordo.Engine }

func (t engineTasks) OpenTasks(ctx context.Context, instanceID string) ([]OpenTask, error) {
	list, err := t.e.ListTasks(ctx, &ordo.ListTasksParams{InstanceID: instanceID, Limit: 1000})
	if err != nil {
		return nil, err
	}
	out := make([]OpenTask, 0, len(list))
	for _, ot := range list {
		out = append(out, OpenTask{ID: ot.ID, Claim: ot.Claim, Step: ot.Step, Queue: ot.Queue, Human: ot.Kind == "human"})
	}
	return out, nil
}

func (t engineTasks) Complete(ctx context.Context, task OpenTask, output, state json.RawMessage) error {
	c := &ordo.TaskCompletion{}
	if output != nil {
		c.Output = output
	}
	if state != nil {
		c.State = state
	}
	return taskErr(t.e.CompleteTask(ctx, task.ID, task.Claim, c))
}

func (t engineTasks) Fail(ctx context.Context, task OpenTask, message string) error {
	return taskErr(t.e.FailTask(ctx, task.ID, task.Claim, &ordo.TaskFailure{Message: message, Code: "swm.task_failed"}))
}

// taskErr makes a task that is done, or was taken again since it was
// listed, an ErrTaskState.
func taskErr(err error) error {
	if errors.Is(err, ordo.ErrLeaseLost) || errors.Is(err, ordo.ErrNotFound) {
		return fmt.Errorf("%w: %w", ErrTaskState, err)
	}
	return err
}
