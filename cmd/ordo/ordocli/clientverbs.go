package ordocli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ordoflow/ordo/ordoclient"
	"github.com/ordoflow/ordo/ordotype"
)

// DefaultServer is the server client verbs talk to when neither --server
// nor ORDO_SERVER says otherwise.
const DefaultServer = "http://127.0.0.1:7070"

// serverCommands returns the server and dev commands and the client verbs.
func serverCommands() []*cobra.Command {
	return append([]*cobra.Command{
		newServe(), newDev(),
		newDeploy(), newDefinitions(), newStart(), newGet(), newList(), newJournal(), newResubmit(), newCancel(), newSend(),
	}, taskCommands()...)
}

// clientFlags are the flags every client verb takes.
type clientFlags struct {
	server string
	token  string
	output string
}

// addClientFlags adds --server, --token and -o to a client verb and wraps
// its RunE so that API errors get their exit codes (Main returns the code
// of an error with an ExitCode method).
func addClientFlags(cmd *cobra.Command, run func(cmd *cobra.Command, args []string, c *ordoclient.Client, output string) error) {
	cf := &clientFlags{}
	f := cmd.Flags()
	f.StringVar(&cf.server, "server", "", "server URL (env ORDO_SERVER; default "+DefaultServer+")")
	f.StringVar(&cf.token, "token", "", "bearer token (env ORDO_TOKEN)")
	addOutput(cmd, &cf.output)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		base := cf.server
		if base == "" {
			base = os.Getenv("ORDO_SERVER")
		}
		if base == "" {
			base = DefaultServer
		}
		token := cf.token
		if token == "" {
			token = os.Getenv("ORDO_TOKEN")
		}
		c, err := ordoclient.New(base, &ordoclient.Options{Token: token, UserAgent: "ordo/" + version()})
		if err != nil {
			return &usageError{err}
		}
		if err := run(cmd, args, c, cf.output); err != nil {
			return apiError(err, base)
		}
		return nil
	}
}

func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return &usageError{fmt.Errorf("%s takes %s, got %d arguments", cmd.CommandPath(), names, len(args))}
		}
		return nil
	}
}

// readJSONArg reads a flag value that is JSON, @file or @- (stdin), and
// checks that it is one JSON value.
func readJSONArg(flag, v string, stdin io.Reader) (json.RawMessage, error) {
	if v == "" {
		return nil, nil
	}
	data := []byte(v)
	if strings.HasPrefix(v, "@") {
		var err error
		if v == "@-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(v[1:])
		}
		if err != nil {
			return nil, &usageError{fmt.Errorf("--%s: %w", flag, err)}
		}
	}
	if !json.Valid(data) {
		return nil, &usageError{fmt.Errorf("--%s is not valid JSON (give JSON, @file or @- for stdin)", flag)}
	}
	return data, nil
}

func newDeploy() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "deploy FILE",
		Short:   "Deploy a workflow definition (YAML or JSON) as a new version",
		Long:    "Deploy a workflow definition file (YAML, or JSON for a .json file; - reads stdin as YAML). A definition identical to the latest version stores nothing and says so. A Serverless Workflow Manager template (JSON) is converted; the server tells it by its shape, or --format says which (see docs/swm.md). Needs the admin role.",
		Example: "  ordo deploy examples/order-fulfilment/workflow.yaml\n  ordo deploy --format swm deliver-pizza.json",
		Args:    exactArgs(1, "one FILE"),
	}
	var format string
	cmd.Flags().StringVar(&format, "format", "", "definition format: ordo or swm (default: told by the file's shape)")
	addClientFlags(cmd, func(cmd *cobra.Command, args []string, c *ordoclient.Client, output string) error {
		if format != "" && format != ordoclient.FormatOrdo && format != ordoclient.FormatSWM {
			return &usageError{fmt.Errorf("--format must be %s or %s, not %q", ordoclient.FormatOrdo, ordoclient.FormatSWM, format)}
		}
		var (
			data []byte
			err  error
		)
		if args[0] == "-" {
			data, err = io.ReadAll(cmd.InOrStdin())
		} else {
			data, err = os.ReadFile(args[0])
		}
		if err != nil {
			return &usageError{err}
		}
		ct := "application/yaml"
		if strings.EqualFold(filepath.Ext(args[0]), ".json") {
			ct = "application/json"
		}
		res, err := c.DeployFormat(cmd.Context(), data, ct, format)
		if err != nil {
			return err
		}
		if output == "json" {
			return printJSON(cmd.OutOrStdout(), res)
		}
		if res.Created {
			fmt.Fprintf(cmd.OutOrStdout(), "deployed %s version %d (hash %s)\n", res.Name, res.Version, short(res.Hash))
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "%s is unchanged: identical to version %d (hash %s)\n", res.Name, res.Version, short(res.Hash))
		}
		return nil
	})
	return cmd
}

func newDefinitions() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "definitions [NAME]",
		Short:   "List deployed workflow definitions, or show one",
		Long:    "Without NAME, list the latest version of every definition. With NAME, print that definition (the latest, or --version) as canonical JSON.",
		Example: "  ordo definitions\n  ordo definitions order-fulfilment --version 1",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &usageError{fmt.Errorf("%s takes at most one NAME", cmd.CommandPath())}
			}
			return nil
		},
	}
	var v int
	cmd.Flags().IntVar(&v, "version", 0, "the version to show (default the latest)")
	addClientFlags(cmd, func(cmd *cobra.Command, args []string, c *ordoclient.Client, output string) error {
		out := cmd.OutOrStdout()
		if len(args) == 1 {
			if v < 0 {
				return &usageError{errors.New("--version must be positive")}
			}
			d, err := c.Definition(cmd.Context(), args[0], v)
			if err != nil {
				return err
			}
			if output == "json" {
				return printJSON(out, d)
			}
			fmt.Fprintf(out, "# %s version %d, deployed %s, hash %s\n", d.Name, d.Version, fmtTime(d.CreatedAt), short(d.Hash))
			return printJSON(out, d.Definition)
		}
		if v != 0 {
			return &usageError{errors.New("--version needs a NAME")}
		}
		defs, err := c.Definitions(cmd.Context())
		if err != nil {
			return err
		}
		if output == "json" {
			return printJSON(out, &ordoclient.DefinitionList{Definitions: defs})
		}
		tw := newTable(out, "NAME", "VERSION", "STEPS", "DEPLOYED", "HASH")
		for _, d := range defs {
			var spec struct {
				Steps []json.RawMessage `json:"steps"`
			}
			_ = json.Unmarshal(d.Definition, &spec)
			tw.row(d.Name, d.Version, len(spec.Steps), fmtTime(d.CreatedAt), short(d.Hash))
		}
		return tw.flush()
	})
	return cmd
}

func newStart() *cobra.Command {
	var (
		input, key, businessKey string
		ver                     int
	)
	cmd := &cobra.Command{
		Use:   "start NAME",
		Short: "Start an instance of a workflow",
		Long: `Start an instance of workflow NAME and print its id. When the idempotency
key (--key, or the one the definition computes from the input) was used
before, the existing instance's id is printed and nothing is started. Needs
the operator role.`,
		Example: "  ordo start order-fulfilment --input '{\"orderId\":\"o-1\"}'\n  ordo start order-fulfilment --input @order.json --key o-1 -o json",
		Args:    exactArgs(1, "one workflow NAME"),
	}
	f := cmd.Flags()
	f.StringVar(&input, "input", "", "workflow input: JSON, @file, or @- for stdin (default {})")
	f.StringVar(&key, "key", "", "idempotency key: a second start with the same key returns the first instance")
	f.StringVar(&businessKey, "business-key", "", "business key, shown in lists (overrides the definition's)")
	f.IntVar(&ver, "version", 0, "definition version to start (default the latest)")
	addClientFlags(cmd, func(cmd *cobra.Command, args []string, c *ordoclient.Client, output string) error {
		in, err := readJSONArg("input", input, cmd.InOrStdin())
		if err != nil {
			return err
		}
		if ver < 0 {
			return &usageError{errors.New("--version must be positive")}
		}
		res, err := c.Start(cmd.Context(), args[0], &ordoclient.StartRequest{Input: in, IdempotencyKey: key, BusinessKey: businessKey, Version: ver})
		if err != nil {
			return err
		}
		if output == "json" {
			return printJSON(cmd.OutOrStdout(), res)
		}
		if res.Existing {
			fmt.Fprintf(cmd.OutOrStdout(), "%s (existing: the idempotency key was used before)\n", res.ID)
		} else {
			fmt.Fprintln(cmd.OutOrStdout(), res.ID)
		}
		return nil
	})
	return cmd
}

func newGet() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "get ID",
		Short:   "Show an instance: status, input, state, output and each step",
		Example: "  ordo get 01a2...\n  ordo get 01a2... -o json | jq .status",
		Args:    exactArgs(1, "one instance ID"),
	}
	addClientFlags(cmd, func(cmd *cobra.Command, args []string, c *ordoclient.Client, output string) error {
		inst, err := c.Get(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if output == "json" {
			return printJSON(cmd.OutOrStdout(), inst)
		}
		return printInstance(cmd.OutOrStdout(), inst)
	})
	return cmd
}

func newList() *cobra.Command {
	var (
		p                           ordoclient.ListParams
		statuses                    []string
		createdAfter, createdBefore string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List instances, newest first",
		Long: `List instances, newest first, a page at a time (--limit, default 100).
When there are more, the last line says which --before gives the next page.`,
		Example: "  ordo list --workflow order-fulfilment --status failed --status review\n  ordo list --business-key o-1 -o json",
		Args:    noArgs,
	}
	f := cmd.Flags()
	f.StringVar(&p.Workflow, "workflow", "", "only instances of this workflow")
	f.StringSliceVar(&statuses, "status", nil, "only instances in this status (repeat, or comma-separate): running, waiting, deferred, review, completed, failed, compensated, cancelled")
	f.StringVar(&p.BusinessKey, "business-key", "", "only instances with this business key")
	f.StringVar(&createdAfter, "created-after", "", "only instances created after this RFC 3339 time")
	f.StringVar(&createdBefore, "created-before", "", "only instances created before this RFC 3339 time")
	f.IntVar(&p.Limit, "limit", 0, "page size, 1 to 1000 (default 100)")
	f.StringVar(&p.Before, "before", "", "page cursor: the id the previous page said to continue before")
	addClientFlags(cmd, func(cmd *cobra.Command, _ []string, c *ordoclient.Client, output string) error {
		for _, s := range statuses {
			if !ordotype.Status(s).Valid() {
				return &usageError{fmt.Errorf("--status %q is not running, waiting, deferred, review, completed, failed, compensated or cancelled", s)}
			}
			p.Statuses = append(p.Statuses, ordotype.Status(s))
		}
		for _, t := range []struct {
			flag, v string
			dst     *time.Time
		}{{"created-after", createdAfter, &p.CreatedAfter}, {"created-before", createdBefore, &p.CreatedBefore}} {
			if t.v == "" {
				continue
			}
			tm, err := time.Parse(time.RFC3339Nano, t.v)
			if err != nil {
				return &usageError{fmt.Errorf("--%s %q is not an RFC 3339 time like 2006-01-02T15:04:05Z", t.flag, t.v)}
			}
			*t.dst = tm
		}
		if p.Limit < 0 || p.Limit > 1000 {
			return &usageError{errors.New("--limit must be from 1 to 1000")}
		}
		list, err := c.List(cmd.Context(), &p)
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if output == "json" {
			return printJSON(out, list)
		}
		tw := newTable(out, "ID", "WORKFLOW", "VERSION", "STATUS", "BUSINESS KEY", "CREATED", "FINISHED")
		for _, i := range list.Instances {
			tw.row(i.ID, i.Workflow, i.Version, i.Status, i.BusinessKey, fmtTime(i.CreatedAt), fmtTimePtr(i.FinishedAt))
		}
		if err := tw.flush(); err != nil {
			return err
		}
		if list.Next != "" {
			fmt.Fprintf(out, "more: ordo list --before %s (with the same filters)\n", list.Next)
		}
		return nil
	})
	return cmd
}

func newJournal() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "journal ID",
		Short:   "Show an instance's journal: every event, in order",
		Example: "  ordo journal 01a2...\n  ordo journal 01a2... -o json | jq '.events[].type'",
		Args:    exactArgs(1, "one instance ID"),
	}
	addClientFlags(cmd, func(cmd *cobra.Command, args []string, c *ordoclient.Client, output string) error {
		events, err := c.Journal(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		out := cmd.OutOrStdout()
		if output == "json" {
			return printJSON(out, &ordoclient.Journal{Events: events})
		}
		tw := newTable(out, "SEQ", "TIME", "TYPE", "STEP", "ATTEMPT", "DATA")
		for _, e := range events {
			attempt := ""
			if e.Attempt > 0 {
				attempt = fmt.Sprint(e.Attempt)
			}
			tw.row(e.Seq, fmtTime(e.Time), e.Type, e.Step, attempt, truncate(compact(e.Data), 80))
		}
		return tw.flush()
	})
	return cmd
}

func newResubmit() *cobra.Command {
	var from, input, reason string
	cmd := &cobra.Command{
		Use:   "resubmit ID",
		Short: "Restart an instance that is in review or failed",
		Long: `Restart an instance parked for review or failed, from the steps that failed
or from --from (that step and every step after it run again), with a fresh
retry budget and optionally a new input. Needs the operator role.`,
		Example: "  ordo resubmit 01a2... --reason 'card updated'\n  ordo resubmit 01a2... --from payment --input @fixed.json",
		Args:    exactArgs(1, "one instance ID"),
	}
	f := cmd.Flags()
	f.StringVar(&from, "from", "", "step to start again from (default the steps that failed)")
	f.StringVar(&input, "input", "", "new workflow input: JSON, @file, or @- for stdin")
	f.StringVar(&reason, "reason", "", "why, kept in the journal")
	addClientFlags(cmd, func(cmd *cobra.Command, args []string, c *ordoclient.Client, output string) error {
		in, err := readJSONArg("input", input, cmd.InOrStdin())
		if err != nil {
			return err
		}
		inst, err := c.Resubmit(cmd.Context(), args[0], &ordoclient.ResubmitRequest{From: from, Input: in, Reason: reason})
		if err != nil {
			return err
		}
		if output == "json" {
			return printJSON(cmd.OutOrStdout(), inst)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "resubmitted %s: %s\n", inst.ID, inst.Status)
		return nil
	})
	return cmd
}

func newCancel() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:     "cancel ID",
		Short:   "Cancel an instance that has not ended",
		Example: "  ordo cancel 01a2... --reason 'customer called'",
		Args:    exactArgs(1, "one instance ID"),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why, kept in the journal")
	addClientFlags(cmd, func(cmd *cobra.Command, args []string, c *ordoclient.Client, output string) error {
		inst, err := c.Cancel(cmd.Context(), args[0], &ordoclient.CancelRequest{Reason: reason})
		if err != nil {
			return err
		}
		if output == "json" {
			return printJSON(cmd.OutOrStdout(), inst)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "cancelled %s: %s\n", inst.ID, inst.Status)
		return nil
	})
	return cmd
}

// apiError gives an error of the client its exit code and a message that
// helps: the problems of a definition, a hint for a server that does not
// answer.
func apiError(err error, base string) error {
	var ue *usageError
	if errors.As(err, &ue) {
		return err
	}
	var ae *ordoclient.Error
	if !errors.As(err, &ae) {
		var ue *url.Error
		if errors.As(err, &ue) {
			return fmt.Errorf("%w\n(is the server running at %s? set it with --server or ORDO_SERVER)", err, base)
		}
		return err
	}
	msg := ae.Message
	if problems := ae.Problems(); len(problems) > 0 {
		msg = "the server refused the definition:"
		for _, p := range problems {
			msg += "\n  " + p.String()
		}
	}
	switch {
	case ae.Status == 404:
		return &exitError{code: ExitNotFound, err: errors.New(msg)}
	case ae.Status == 401:
		return &exitError{code: ExitAuth, err: fmt.Errorf("%s (give a token with --token or ORDO_TOKEN)", msg)}
	case ae.Status == 403:
		return &exitError{code: ExitAuth, err: errors.New(msg)}
	}
	return errors.New(msg)
}
