package ordocli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ordoflow/ordo/ordoclient"
)

// exitError is an error with its own exit code: ExitNotFound or ExitAuth.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode returns the exit code the command should end with.
func (e *exitError) ExitCode() int { return e.code }

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, headers ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	fmt.Fprintln(t.tw, strings.Join(headers, "\t"))
	return t
}

func (t *table) row(cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(fmt.Sprint(c))
		if s[i] == "" {
			s[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(s, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// printInstance writes an instance for people.
func printInstance(w io.Writer, inst *ordoclient.Instance) error {
	fmt.Fprintf(w, "id:        %s\n", inst.ID)
	fmt.Fprintf(w, "workflow:  %s v%d\n", inst.Workflow, inst.Version)
	fmt.Fprintf(w, "status:    %s\n", inst.Status)
	if inst.BusinessKey != "" {
		fmt.Fprintf(w, "business:  %s\n", inst.BusinessKey)
	}
	if inst.IdempotencyKey != "" {
		fmt.Fprintf(w, "key:       %s\n", inst.IdempotencyKey)
	}
	fmt.Fprintf(w, "created:   %s\n", fmtTime(inst.CreatedAt))
	fmt.Fprintf(w, "updated:   %s\n", fmtTime(inst.UpdatedAt))
	if inst.FinishedAt != nil {
		fmt.Fprintf(w, "finished:  %s\n", fmtTime(*inst.FinishedAt))
	}
	if inst.Error != nil {
		fmt.Fprintf(w, "error:     %s\n", errorText(inst.Error))
	}
	fmt.Fprintf(w, "input:     %s\n", compact(inst.Input))
	fmt.Fprintf(w, "state:     %s\n", compact(inst.State))
	fmt.Fprintf(w, "output:    %s\n\n", compact(inst.Output))
	tw := newTable(w, "STEP", "STATUS", "ATTEMPT", "STARTED", "FINISHED", "OUTPUT / ERROR")
	for _, s := range inst.Steps {
		detail := truncate(compact(s.Output), 60)
		switch {
		case s.Error != nil:
			detail = errorText(s.Error)
		case s.Reason != "":
			detail = s.Reason
		}
		attempt := ""
		if s.Attempt > 0 {
			attempt = fmt.Sprint(s.Attempt)
		}
		tw.row(s.ID, s.Status, attempt, fmtTimePtr(s.StartedAt), fmtTimePtr(s.FinishedAt), detail)
	}
	return tw.flush()
}

func errorText(e *ordoclient.ErrorInfo) string {
	s := e.Message
	if e.Code != "" {
		s += " [" + e.Code + "]"
	}
	if e.Step != "" {
		s = "step " + e.Step + ": " + s
	}
	return s
}

// compact returns JSON on one line, "-" for nothing.
func compact(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return "-"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return string(raw)
	}
	return buf.String()
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-3]) + "..."
}

// short abbreviates a hash.
func short(hash string) string {
	if len(hash) > 12 {
		return hash[:12]
	}
	return hash
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05.000")
}

func fmtTimePtr(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return fmtTime(*t)
}
