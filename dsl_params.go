package ordo

import (
	"bytes"
	"encoding/json"
)

// Params sets the JSON object handed to the worker or person that does a
// task or human step, with the task (template: params: {...}). Build
// reports params that are not a JSON object, or on another kind of step.
func (s *StepBuilder) Params(params json.RawMessage) *StepBuilder {
	s.spec.Params = bytes.Clone(params)
	return s
}
