package ordocli

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/ordoflow/ordo/ordoclient"
)

// taskCommands returns the verbs of remote and human tasks.
func taskCommands() []*cobra.Command {
	return []*cobra.Command{newTasks(), newComplete(), newFail()}
}

func newTasks() *cobra.Command {
	var p ordoclient.ListTasksParams
	cmd := &cobra.Command{
		Use:   "tasks",
		Short: "List open tasks: waiting human tasks and remote queue tasks",
		Long: `List open tasks, oldest first: human tasks waiting for a person, and tasks
of remote queues waiting for a worker or leased to one. -o json prints an
array of tasks (each with its id, claim, input, and for human tasks its role
and form).`,
		Example: "  ordo tasks --kind human\n  ordo tasks --queue payment -o json | jq '.[].id'",
		Args:    noArgs,
	}
	f := cmd.Flags()
	f.StringVar(&p.Queue, "queue", "", "only tasks of this queue")
	f.StringVar(&p.Instance, "instance", "", "only tasks of this instance")
	f.StringVar(&p.Kind, "kind", "", "only tasks of this kind: task (remote queues) or human")
	f.IntVar(&p.Limit, "limit", 0, "page size, 1 to 1000 (default 100)")
	f.StringVar(&p.After, "after", "", "page cursor: the id of the last task of the page before")
	addClientFlags(cmd, func(cmd *cobra.Command, _ []string, c *ordoclient.Client, output string) error {
		if p.Kind != "" && p.Kind != ordoclient.TaskKindTask && p.Kind != ordoclient.TaskKindHuman {
			return &usageError{fmt.Errorf("--kind %q is not task or human", p.Kind)}
		}
		if p.Limit < 0 || p.Limit > 1000 {
			return &usageError{errors.New("--limit must be from 1 to 1000")}
		}
		tasks, err := c.ListTasks(cmd.Context(), &p)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if output == "json" {
			return printJSON(out, tasks)
		}
		tw := newTable(out, "ID", "KIND", "QUEUE", "INSTANCE", "STEP", "ATTEMPT", "CLAIM", "WORKER / ROLE", "LEASE UNTIL", "CREATED")
		for _, t := range tasks {
			who := t.Worker
			if t.Kind == ordoclient.TaskKindHuman {
				who = "role " + t.Role
			}
			tw.row(t.ID, t.Kind, t.Queue, t.InstanceID, t.Step, t.Attempt, t.Claim, who, fmtTimePtr(t.LeaseUntil), fmtTime(t.CreatedAt))
		}
		return tw.flush()
	})
	return cmd
}

// taskArg checks a TASK argument: a task id is a positive integer.
func taskArg(v string) error {
	if n, err := strconv.ParseInt(v, 10, 64); err != nil || n <= 0 {
		return &usageError{fmt.Errorf("TASK must be a task id (a positive integer, as ordo tasks shows), not %q", v)}
	}
	return nil
}

// leaseLost turns a lease_lost answer into a plain failure (exit code 1)
// with the server's message, which says why.
func leaseLost(err error) error {
	var ae *ordoclient.Error
	if errors.As(err, &ae) && ae.Code == ordoclient.CodeLeaseLost {
		return errors.New(ae.Message)
	}
	return err
}

func newComplete() *cobra.Command {
	var (
		output   string
		state    string
		claim    int
		instance string
	)
	cmd := &cobra.Command{
		Use:   "complete TASK",
		Short: "Complete a task with its output",
		Long: `Complete task TASK (an id from ordo tasks) with --output. A human task's
output must satisfy the step's form: when it does not, the error says where.
A remote queue task needs --claim, the claim it was polled with; a late or
repeated completion is refused (exit code 1, "lease lost") and journaled on
its instance as step.rejected (for a task that is done, when --instance
names the instance). A human task whose step names a role needs a token
that carries it. Needs the operator role.`,
		Example: "  ordo complete 42 --output '{\"approved\":true}'\n  ordo complete 42 --output @result.json --claim 2",
		Args:    exactArgs(1, "one TASK id"),
	}
	f := cmd.Flags()
	f.StringVar(&output, "output", "", "the step's output: JSON, @file, or @- for stdin (required)")
	f.StringVar(&state, "state", "", "the workflow's new state: JSON, @file, or @- for stdin")
	f.IntVar(&claim, "claim", 0, "the claim the task was polled with (remote queue tasks)")
	f.StringVar(&instance, "instance", "", "the task's instance: a refused result for a task that is done is journaled on it (step.rejected)")
	addResultFlags(cmd, func(cmd *cobra.Command, args []string, c *ordoclient.Client) error {
		if err := taskArg(args[0]); err != nil {
			return err
		}
		if output == "" {
			return &usageError{errors.New("--output is required (JSON, @file or @- for stdin)")}
		}
		if claim < 0 {
			return &usageError{errors.New("--claim must be positive")}
		}
		out, err := readJSONArg("output", output, cmd.InOrStdin())
		if err != nil {
			return err
		}
		st, err := readJSONArg("state", state, cmd.InOrStdin())
		if err != nil {
			return err
		}
		if err := c.CompleteTask(cmd.Context(), args[0], &ordoclient.CompleteRequest{Claim: claim, InstanceID: instance, Output: out, State: st}); err != nil {
			return leaseLost(err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "task %s completed\n", args[0])
		return nil
	})
	return cmd
}

func newFail() *cobra.Command {
	var (
		msg, code string
		retryable bool
		claim     int
		instance  string
	)
	cmd := &cobra.Command{
		Use:   "fail TASK",
		Short: "Fail a task",
		Long: `Fail task TASK with an error message. With --retryable the step's retry
policy runs it again as a new attempt; without, the step fails at once. A
remote queue task needs --claim, the claim it was polled with. A refused
failure is journaled as for ordo complete. Needs the operator role.`,
		Example: "  ordo fail 42 --error 'card declined' --code card_declined --claim 1",
		Args:    exactArgs(1, "one TASK id"),
	}
	f := cmd.Flags()
	f.StringVar(&msg, "error", "", "what went wrong (required)")
	f.StringVar(&code, "code", "", "an error code, kept in the journal for error paths to tell errors apart")
	f.BoolVar(&retryable, "retryable", false, "let the step's retry policy run it again")
	f.IntVar(&claim, "claim", 0, "the claim the task was polled with (remote queue tasks)")
	f.StringVar(&instance, "instance", "", "the task's instance: a refused result for a task that is done is journaled on it (step.rejected)")
	addResultFlags(cmd, func(cmd *cobra.Command, args []string, c *ordoclient.Client) error {
		if err := taskArg(args[0]); err != nil {
			return err
		}
		if msg == "" {
			return &usageError{errors.New("--error is required: say why the task failed")}
		}
		if claim < 0 {
			return &usageError{errors.New("--claim must be positive")}
		}
		err := c.FailTask(cmd.Context(), args[0], &ordoclient.FailRequest{Claim: claim, InstanceID: instance, Error: &ordoclient.TaskError{Message: msg, Code: code, Retryable: retryable}})
		if err != nil {
			return leaseLost(err)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "task %s failed\n", args[0])
		return nil
	})
	return cmd
}

// addResultFlags is addClientFlags for complete and fail, whose --output
// is the task's output rather than the format of what they print (a line).
func addResultFlags(cmd *cobra.Command, run func(cmd *cobra.Command, args []string, c *ordoclient.Client) error) {
	var server, token string
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "server URL (env ORDO_SERVER; default "+DefaultServer+")")
	f.StringVar(&token, "token", "", "bearer token (env ORDO_TOKEN)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		base := cmp.Or(server, os.Getenv("ORDO_SERVER"), DefaultServer)
		c, err := ordoclient.New(base, &ordoclient.Options{Token: cmp.Or(token, os.Getenv("ORDO_TOKEN")), UserAgent: "ordo/" + version()})
		if err != nil {
			return &usageError{err}
		}
		if err := run(cmd, args, c); err != nil {
			return apiError(err, base)
		}
		return nil
	}
}
