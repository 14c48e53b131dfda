package engine

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/ordotype"
)

// compiledForm is a human step's form, compiled once per definition.
type compiledForm struct {
	schema *jsonschema.Schema
	err    error
}

// checkForm validates a human task's output against its step's form and
// returns a *FormError that points at the first problem.
func (e *Engine) checkForm(def *definition.Workflow, step *definition.Step, output []byte) error {
	key := def.Hash + "\x00" + step.ID
	v, ok := e.remote.forms.Load(key)
	if !ok {
		v, _ = e.remote.forms.LoadOrStore(key, compileForm(step.Human.Form))
	}
	cf := v.(*compiledForm)
	if cf.err != nil {
		return fmt.Errorf("step %q: its form does not compile: %v: %w", step.ID, cf.err, ordotype.ErrInvalid)
	}
	if len(bytes.TrimSpace(output)) == 0 {
		output = []byte("null")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(output))
	if err != nil {
		return &FormError{Message: "output is not valid JSON: " + err.Error()}
	}
	err = cf.schema.Validate(doc)
	if err == nil {
		return nil
	}
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return &FormError{Message: err.Error()}
	}
	out := ve.BasicOutput()
	fe := &FormError{Pointer: out.InstanceLocation, Message: strings.Join(strings.Fields(ve.Error()), " ")}
	// The flattened list ends with the deepest problem.
	for i := len(out.Errors) - 1; i >= 0; i-- {
		if u := out.Errors[i]; u.Error != nil {
			fe.Pointer, fe.Message = u.InstanceLocation, u.Error.String()
			break
		}
	}
	return fe
}

// formRefusingLoader refuses every reference outside the form: forms are
// self-contained, and validation must not fetch anything.
type formRefusingLoader struct{}

func (formRefusingLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("cannot load %s: forms must be self-contained", url)
}

func compileForm(form []byte) *compiledForm {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(form))
	if err != nil {
		return &compiledForm{err: err}
	}
	const loc = "urn:ordo:form"
	c := jsonschema.NewCompiler()
	c.UseLoader(formRefusingLoader{})
	if err := c.AddResource(loc, doc); err != nil {
		return &compiledForm{err: err}
	}
	s, err := c.Compile(loc)
	if err != nil {
		return &compiledForm{err: err}
	}
	return &compiledForm{schema: s}
}
