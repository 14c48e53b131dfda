package definition

import (
	"fmt"
	"strings"

	"github.com/ordoflow/ordo/ordotype"
)

// Problem is one thing wrong with a definition.
type Problem struct {
	// File is the file name given to [Parse], if any.
	File string `json:"file,omitempty"`
	// Line and Column locate the problem in the source, counting from 1.
	// They are 0 for definitions built with the DSL.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Step is the id of the step the problem is in, if any.
	Step string `json:"step,omitempty"`
	// Field is the field the problem is in, as a dotted path relative to
	// the step (or to the workflow when Step is empty), e.g.
	// "retry.maxAttempts".
	Field string `json:"field,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// String formats the problem as `file:line:col: step "id": field: message`,
// or `line 12:5: ...` without a file, leaving out the parts that are
// unknown.
func (p Problem) String() string {
	var b strings.Builder
	switch {
	case p.Line > 0 && p.File != "":
		fmt.Fprintf(&b, "%s:%d", p.File, p.Line)
	case p.Line > 0:
		fmt.Fprintf(&b, "line %d", p.Line)
	case p.File != "":
		b.WriteString(p.File)
	}
	if p.Line > 0 && p.Column > 0 {
		fmt.Fprintf(&b, ":%d", p.Column)
	}
	if p.Line > 0 || p.File != "" {
		b.WriteString(": ")
	}
	if p.Step != "" {
		fmt.Fprintf(&b, "step %q: ", p.Step)
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError reports every problem found in a definition. It matches
// [ordotype.ErrInvalid] with errors.Is.
type ValidationError struct {
	// Problems are sorted by position in the source. After the first 100,
	// a last problem says how many more there are.
	Problems []Problem
}

// Error returns one line per problem.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Is reports whether target is [ordotype.ErrInvalid].
func (e *ValidationError) Is(target error) bool { return target == ordotype.ErrInvalid }
