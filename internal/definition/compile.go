package definition

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

const (
	// MaxSteps is the largest number of steps a workflow may have, not
	// counting compensation steps.
	MaxSteps = 1000
	// maxNameLen is the longest workflow name, step id or stage name.
	maxNameLen = 128
	// maxProblems is how many problems a ValidationError lists; one more
	// says how many were left out.
	maxProblems = 100
	// maxCollected is how many problems are collected before they are only
	// counted. Problems are mostly found in file order, so the first
	// maxProblems by position are almost always among them.
	maxCollected = 10 * maxProblems
)

var (
	workflowNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	stepIDRe       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)
	// headerNameRe is an RFC 9110 token.
	headerNameRe = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// httpMethods are the methods an http step may use.
var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// compiler validates a Spec and builds its Workflow, collecting problems.
type compiler struct {
	spec      *Spec
	file      string
	positions map[string]position // nil for specs built in Go
	problems  []Problem

	wf      *Workflow
	entries []*entry          // every step in file order
	byID    map[string]*entry // first step with each id
	// idProblems and refProblems are set when ids or references are
	// wrong, to keep reachability checks from piling up follow-on noise.
	idProblems, refProblems bool
	// failed holds the paths where decoding failed, and the fields that
	// enclose them, so that checks on the half-decoded values stay quiet.
	failed map[string]bool
	// suggestions counts the "did you mean" suggestions made so far.
	suggestions int
	// dropped counts the problems found after maxCollected, which are
	// only counted, to bound the work spent on hopeless input.
	dropped int
}

// entry is a step being compiled.
type entry struct {
	step  *Step
	spec  *SpecStep
	path  string   // "steps.2" or "stages.1.steps.0"
	order int      // position in file order
	stage int      // index in Spec.Stages, or -1
	deps  []*entry // after, resolved, then with what stages imply
	// handlers are the steps onError and onTimeout lead to.
	handlers []*entry
	// next is the step the back-edge goes to, if any.
	next *entry
	// inGraph is false for steps without a usable id (missing, or a
	// duplicate), which the graph checks leave out.
	inGraph bool
}

// newCompiler returns a compiler for spec. positions maps spec paths to
// where they are in the file; it is nil for specs built in Go.
func newCompiler(spec *Spec, file string, positions map[string]position) *compiler {
	return &compiler{spec: spec, file: file, positions: positions, byID: map[string]*entry{}, failed: map[string]bool{}}
}

// markFailed records that decoding failed at path. Its enclosing fields are
// marked up to the step or workflow field they belong to, but not the step
// itself.
func (c *compiler) markFailed(path string) {
	segs := strings.Split(path, ".")
	shallowest := 1 // a workflow field, such as "retry"
	switch {
	case segs[0] == "steps":
		shallowest = 3 // "steps.2.task"
	case segs[0] == "stages" && len(segs) > 2 && segs[2] == "steps":
		shallowest = 5 // "stages.0.steps.2.task"
	case segs[0] == "stages":
		shallowest = 3 // "stages.0.name"
	}
	for n := len(segs); n >= shallowest; n-- {
		c.failed[strings.Join(segs[:n], ".")] = true
	}
}

// report turns an issue into a Problem with a position, a step and a field.
func (c *compiler) report(is issue) {
	if len(c.problems) >= maxCollected {
		c.dropped++
		return
	}
	p := Problem{File: c.file, Message: is.message}
	if is.at != nil {
		p.Line, p.Column = is.at.line, is.at.column
	} else {
		// Use the nearest enclosing value that has a position: a missing
		// field is reported where its parent starts.
		for path := is.path; ; {
			if pos, ok := c.positions[path]; ok {
				p.Line, p.Column = pos.line, pos.column
				break
			}
			if path == "" {
				break
			}
			i := strings.LastIndexByte(path, '.')
			if i < 0 {
				path = ""
			} else {
				path = path[:i]
			}
		}
	}
	p.Step, p.Field = c.locate(is.path)
	c.problems = append(c.problems, p)
}

// problemf reports a problem at path, unless decoding failed there already.
func (c *compiler) problemf(path, format string, args ...any) {
	if c.failed[path] {
		return
	}
	c.report(issue{path: path, message: fmt.Sprintf(format, args...)})
}

// locate splits a spec path into the id of the step it is in and the field
// within that step (or within the workflow, if it is in no step).
func (c *compiler) locate(path string) (step, field string) {
	segs := strings.Split(path, ".")
	index := func(s string, n int) (int, bool) {
		i, err := strconv.Atoi(s)
		return i, err == nil && i >= 0 && i < n
	}
	var (
		spec  *SpecStep
		label string
		rest  []string
	)
	switch {
	case len(segs) >= 2 && segs[0] == "steps":
		if i, ok := index(segs[1], len(c.spec.Steps)); ok {
			spec, label, rest = &c.spec.Steps[i], fmt.Sprintf("steps[%d]", i), segs[2:]
		}
	case len(segs) >= 4 && segs[0] == "stages" && segs[2] == "steps":
		if i, ok := index(segs[1], len(c.spec.Stages)); ok {
			if j, ok := index(segs[3], len(c.spec.Stages[i].Steps)); ok {
				spec, label, rest = &c.spec.Stages[i].Steps[j], fmt.Sprintf("stages[%d].steps[%d]", i, j), segs[4:]
			}
		}
	}
	if spec == nil {
		return "", displayPath(segs)
	}
	// A step field: the message names the element, so drop indexes.
	names := make([]string, 0, len(rest))
	for _, s := range rest {
		if _, err := strconv.Atoi(s); err != nil {
			names = append(names, s)
		}
	}
	field = strings.Join(names, ".")
	if spec.ID == "" {
		return "", strings.Trim(label+"."+field, ".")
	}
	return spec.ID, field
}

// displayPath formats a workflow-level path with indexes in brackets, as
// in "stages[1].name".
func displayPath(segs []string) string {
	var b strings.Builder
	for _, s := range segs {
		if _, err := strconv.Atoi(s); err == nil && b.Len() > 0 {
			fmt.Fprintf(&b, "[%s]", s)
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// compile runs every check and builds the Workflow.
func (c *compiler) compile() (*Workflow, error) {
	s := c.spec
	w := &Workflow{
		Name:        s.Workflow,
		Description: s.Description,
		Timeout:     time.Duration(s.Timeout),
		OnFailure:   cmp.Or(s.OnFailure, FailureFail),
	}
	c.wf = w
	c.checkWorkflowName("workflow", s.Workflow)
	w.IdempotencyKey = c.expr("idempotencyKey", s.IdempotencyKey, resultString)
	w.BusinessKey = c.expr("businessKey", s.BusinessKey, resultString)
	w.ConcurrencyKey = c.expr("concurrencyKey", s.ConcurrencyKey, resultString)
	w.Retry = c.retry("retry", DefaultRetryPolicy(), s.Retry)
	c.nonNegative("timeout", s.Timeout)
	w.MaxConcurrent = s.MaxConcurrent
	if s.MaxConcurrent < 0 {
		c.problemf("maxConcurrent", "must not be negative (0 means no limit), got %d", s.MaxConcurrent)
	}
	if !w.OnFailure.valid() {
		c.problemf("onFailure", "unknown mode %q (use fail, review or compensate)", s.OnFailure)
	}

	n := len(s.Steps)
	for _, stage := range s.Stages {
		n += len(stage.Steps)
	}
	if n > MaxSteps {
		c.problemf("steps", "too many steps (%d); the limit is %d", n, MaxSteps)
	} else {
		c.collectSteps()
		c.resolveReferences()
		c.buildGraph()
	}

	if len(c.problems) > 0 {
		slices.SortStableFunc(c.problems, func(a, b Problem) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		if n := len(c.problems) + c.dropped; n > maxProblems {
			c.problems = append(c.problems[:maxProblems], Problem{File: c.file, Message: fmt.Sprintf("and %d more problems", n-maxProblems)})
		}
		return nil, &ValidationError{Problems: c.problems}
	}
	if err := c.canonicalize(); err != nil {
		return nil, err
	}
	return w, nil
}

// checkWorkflowName checks a workflow name (the workflow's own or a child's).
func (c *compiler) checkWorkflowName(path, name string) {
	switch {
	case name == "":
		c.problemf(path, "required")
	case len(name) > maxNameLen:
		c.problemf(path, "name is longer than %d characters", maxNameLen)
	case !workflowNameRe.MatchString(name):
		c.problemf(path, "invalid name %q: use lower-case letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	}
}

// expr compiles an optional expression, reporting errors at path.
func (c *compiler) expr(path, source string, want exprResult) *Expr {
	if source == "" {
		return nil
	}
	e, err := compileExpr(source, want)
	if err != nil {
		c.problemf(path, "%v", err)
		return nil
	}
	return e
}

// nonNegative checks a duration that may be zero. Parsed durations are never
// negative; ones built in Go may be.
func (c *compiler) nonNegative(path string, d Duration) {
	if d < 0 {
		c.problemf(path, "must not be negative")
	}
}

// retry checks r and merges its fields over base.
func (c *compiler) retry(path string, base RetryPolicy, r *SpecRetry) RetryPolicy {
	if r == nil {
		return base
	}
	p := base
	if r.MaxAttempts != nil {
		if *r.MaxAttempts < 1 {
			c.problemf(child(path, "maxAttempts"), "must be at least 1, got %d", *r.MaxAttempts)
		}
		p.MaxAttempts = *r.MaxAttempts
	}
	if r.InitialInterval != nil {
		if *r.InitialInterval <= 0 {
			c.problemf(child(path, "initialInterval"), "must be positive")
		}
		p.InitialInterval = time.Duration(*r.InitialInterval)
	}
	if r.BackoffFactor != nil {
		// Written to also reject NaN and infinity.
		if f := *r.BackoffFactor; !(f >= 1 && f <= 1e6) {
			c.problemf(child(path, "backoffFactor"), "must be between 1 and 1000000, got %v", f)
		}
		p.BackoffFactor = *r.BackoffFactor
	}
	if r.MaxInterval != nil {
		if *r.MaxInterval <= 0 {
			c.problemf(child(path, "maxInterval"), "must be positive")
		}
		p.MaxInterval = time.Duration(*r.MaxInterval)
	}
	if r.Jitter != nil {
		if j := *r.Jitter; !(j >= 0 && j <= 1) {
			c.problemf(child(path, "jitter"), "must be between 0 and 1, got %v", j)
		}
		p.Jitter = *r.Jitter
	}
	if (r.MaxInterval != nil || r.InitialInterval != nil) && p.MaxInterval > 0 && p.MaxInterval < p.InitialInterval {
		field := "initialInterval"
		if r.MaxInterval != nil {
			field = "maxInterval"
		}
		c.problemf(child(path, field), "maxInterval (%s) is less than initialInterval (%s)", p.MaxInterval, p.InitialInterval)
	}
	return p
}

// collectSteps checks and compiles every step, in file order: the steps
// outside stages first, then each stage's.
func (c *compiler) collectSteps() {
	for i := range c.spec.Steps {
		c.addStep(&c.spec.Steps[i], child("steps", i), "", -1)
	}
	stageNames := map[string]bool{}
	for i := range c.spec.Stages {
		stage := &c.spec.Stages[i]
		path := child("stages", i)
		switch {
		case stage.Name == "":
			c.problemf(child(path, "name"), "required")
		case len(stage.Name) > maxNameLen:
			c.problemf(child(path, "name"), "name is longer than %d characters", maxNameLen)
		case stageNames[stage.Name]:
			c.problemf(child(path, "name"), "duplicate stage name %q", stage.Name)
		}
		stageNames[stage.Name] = true
		for j := range stage.Steps {
			c.addStep(&stage.Steps[j], child(child(path, "steps"), j), stage.Name, i)
		}
	}
	if len(c.entries) == 0 {
		c.problemf("steps", "at least one step is required")
	}
}

// addStep checks a step's id and compiles its body.
func (c *compiler) addStep(spec *SpecStep, path, stage string, stageIndex int) {
	e := &entry{spec: spec, path: path, order: len(c.entries), stage: stageIndex}
	c.entries = append(c.entries, e)
	idPath := child(path, "id")
	switch first, dup := c.byID[spec.ID]; {
	case spec.ID == "":
		c.problemf(idPath, "required")
		c.idProblems = true
	case dup:
		c.problemf(idPath, "duplicate step id (also at %s)", c.where(first.path))
		c.idProblems = true
	default:
		if len(spec.ID) > maxNameLen {
			c.problemf(idPath, "id is longer than %d characters", maxNameLen)
		} else if !stepIDRe.MatchString(spec.ID) {
			c.problemf(idPath, "invalid id %q: use letters, digits, '_' and '-', starting with a letter or digit", spec.ID)
		}
		c.byID[spec.ID] = e
		e.inGraph = true
	}
	e.step = c.stepBody(spec, path)
	e.step.ID = spec.ID
	e.step.Stage = stage
	e.step.OnError = c.errorRoutes(path, spec.OnError)
	e.step.OnTimeout = slices.Clone(spec.OnTimeout)
	c.backEdge(e.step, path, spec)
	if len(spec.OnTimeout) > 0 && e.step.Timeout == 0 && (e.step.Receive == nil || e.step.Receive.Timeout == 0) {
		c.problemf(child(path, "onTimeout"), "the step has no timeout (set timeout, or receive.timeout)")
	}
	if comp := spec.Compensate; comp != nil {
		cpath := child(path, "compensate")
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"id", comp.ID != ""},
			{"after", len(comp.After) > 0},
			{"onError", len(comp.OnError) > 0},
			{"onTimeout", len(comp.OnTimeout) > 0},
			{"next", comp.Next != ""},
			{"maxIterations", comp.MaxIterations != nil},
			{"compensate", comp.Compensate != nil},
		} {
			if f.set {
				c.problemf(child(cpath, f.name), "not allowed in a compensation step")
			}
		}
		e.step.Compensate = c.stepBody(comp, cpath)
		e.step.Compensate.ID = spec.ID + ".compensate"
		e.step.Compensate.Stage = stage
		e.step.Compensate.Index = -1
	}
}

// where describes where a path is for messages: its line, or for specs
// built in Go its place, as in "steps[2]".
func (c *compiler) where(path string) string {
	if pos, ok := c.positions[path]; ok {
		return fmt.Sprintf("line %d", pos.line)
	}
	return displayPath(strings.Split(path, "."))
}

// stepBody compiles what a step does, everything but its id and edges.
func (c *compiler) stepBody(spec *SpecStep, path string) *Step {
	s := &Step{
		Retry:       c.retry(child(path, "retry"), c.wf.Retry, spec.Retry),
		Timeout:     time.Duration(spec.Timeout),
		Heartbeat:   time.Duration(spec.Heartbeat),
		WaitEffects: spec.WaitEffects,
		When:        c.expr(child(path, "when"), spec.When, resultBool),
	}
	if pos, ok := c.positions[path]; ok {
		s.Line, s.Column = pos.line, pos.column
	}
	c.nonNegative(child(path, "timeout"), spec.Timeout)

	var kinds []StepKind
	if t := spec.Task; t != nil {
		kinds = append(kinds, KindTask)
		s.Task = c.task(child(path, "task"), t)
	}
	if h := spec.HTTP; h != nil {
		kinds = append(kinds, KindHTTP)
		s.HTTP = c.http(child(path, "http"), h)
	}
	if t := spec.Timer; t != nil {
		kinds = append(kinds, KindTimer)
		s.Timer = c.timer(child(path, "timer"), t)
	}
	if r := spec.Receive; r != nil {
		kinds = append(kinds, KindReceive)
		s.Receive = c.receive(child(path, "receive"), r)
	}
	if h := spec.Human; h != nil {
		kinds = append(kinds, KindHuman)
		s.Human = c.human(child(path, "human"), h)
	}
	if w := spec.Workflow; w != nil {
		kinds = append(kinds, KindWorkflow)
		s.Child = c.childWorkflow(child(path, "workflow"), w)
	}
	switch len(kinds) {
	case 0:
		c.problemf(path, "the step does nothing: give it one of task, http, timer, receive, human or workflow")
	case 1:
		s.Kind = kinds[0]
	default:
		names := make([]string, len(kinds))
		for i, k := range kinds {
			names[i] = string(k)
		}
		c.problemf(path, "the step has several kinds (%s): give it exactly one", strings.Join(names, ", "))
	}
	c.nonNegative(child(path, "heartbeat"), spec.Heartbeat)
	if spec.Heartbeat != 0 && len(kinds) == 1 && s.Kind != KindTask {
		c.problemf(child(path, "heartbeat"), "only task steps have a heartbeat, this is a %s step", s.Kind)
	}
	if len(spec.Params) > 0 {
		params, err := canonicalParams(spec.Params)
		switch {
		case err != nil:
			c.problemf(child(path, "params"), "%v", err)
		case len(kinds) == 1 && s.Kind != KindTask && s.Kind != KindHuman:
			c.problemf(child(path, "params"), "only task and human steps take params, this is a %s step", s.Kind)
		}
		s.Params = params
	}
	return s
}

// normalNumbers replaces the json.Numbers in v by int64 or uint64 when
// they are integers and float64 otherwise, as the YAML decoder reads them.
func normalNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = normalNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalNumbers(e)
		}
	}
	return v
}

// MaxParamsSize is the largest params object a step may have, in bytes of
// canonical JSON.
const MaxParamsSize = 64 << 10

// canonicalParams checks that raw is a JSON object and returns it
// re-encoded canonically: compact, keys sorted, and numbers as a YAML
// template gives them (integers as written, other numbers in their
// shortest form), so that a template and its canonical JSON agree.
func canonicalParams(raw json.RawMessage) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, errors.New("must be an object")
	}
	out, err := json.Marshal(normalNumbers(v))
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if len(out) > MaxParamsSize {
		return nil, fmt.Errorf("is %d bytes, more than the limit of %d", len(out), MaxParamsSize)
	}
	return out, nil
}

// maxCodeLen is the longest error code an onError route may name.
const maxCodeLen = 128

// errorRoutes checks a step's onError routes and compiles them. The step
// ids they go to are checked with the graph.
func (c *compiler) errorRoutes(stepPath string, routes ErrorRoutes) []ErrorRoute {
	if len(routes) == 0 {
		return nil
	}
	out := make([]ErrorRoute, len(routes))
	taken := map[string]bool{} // codes matched by earlier routes
	for i, r := range routes {
		path := child(child(stepPath, "onError"), i)
		out[i] = ErrorRoute{Codes: slices.Clone([]string(r.Codes)), Next: slices.Clone([]string(r.Next)), Compensate: r.Compensate}
		switch {
		case len(r.Next) == 0 && !r.Compensate:
			c.problemf(path, "the route does nothing: set next (the steps to go to) or compensate: true")
		case len(r.Next) > 0 && r.Compensate:
			c.problemf(child(path, "compensate"), "set next or compensate, not both")
		}
		if r.Codes == nil {
			if i < len(routes)-1 {
				c.problemf(path, "a route without codes matches every error, so only the last route may leave codes out")
			}
			continue
		}
		if len(r.Codes) == 0 {
			c.problemf(child(path, "codes"), "must list at least one error code; leave codes out to match every error")
		}
		mine := map[string]bool{}
		for j, code := range r.Codes {
			cpath := child(child(path, "codes"), j)
			switch {
			case code == "":
				c.problemf(cpath, "an error code must not be empty")
			case len(code) > maxCodeLen:
				c.problemf(cpath, "error code is longer than %d characters", maxCodeLen)
			case mine[code]:
				c.problemf(cpath, "code %q is listed twice", code)
			case taken[code]:
				c.problemf(cpath, "code %q is already matched by an earlier route", code)
			}
			mine[code] = true
		}
		for code := range mine {
			taken[code] = true
		}
	}
	return out
}

// routeNextPath is the spec path of the j-th step id route i goes to: in
// the short form, "onError: [a, b]", it is onError.j.
func routeNextPath(stepPath string, routes ErrorRoutes, i, j int) string {
	base := child(stepPath, "onError")
	if routes.short() {
		return child(base, j)
	}
	return child(child(child(base, i), "next"), j)
}

// backEdge checks a step's maxIterations and sets its back-edge fields.
// That the target is an earlier step is checked with the graph.
func (c *compiler) backEdge(s *Step, path string, spec *SpecStep) {
	s.Next = spec.Next
	if spec.MaxIterations != nil {
		if spec.Next == "" {
			c.problemf(child(path, "maxIterations"), "only allowed with next (a back-edge)")
		} else if n := *spec.MaxIterations; n < 1 || n > MaxIterationsLimit {
			c.problemf(child(path, "maxIterations"), "must be between 1 and %d, got %d", MaxIterationsLimit, n)
		}
	}
	if spec.Next != "" {
		s.MaxIterations = DefaultMaxIterations
		if spec.MaxIterations != nil {
			s.MaxIterations = *spec.MaxIterations
		}
	}
}

// task checks a task step.
func (c *compiler) task(path string, t *TaskSpec) *TaskSpec {
	switch {
	case t.Handler == "" && t.Queue == "":
		c.problemf(path, "set handler (a Go handler) or queue (a worker queue)")
	case t.Handler != "" && t.Queue != "":
		c.problemf(path, "set handler or queue, not both")
	}
	out := *t
	return &out
}

// http checks and compiles an http step.
func (c *compiler) http(path string, h *SpecHTTP) *HTTPSpec {
	out := &HTTPSpec{
		Method:  cmp.Or(h.Method, "POST"),
		URL:     h.URL,
		Headers: maps.Clone(h.Headers),
		Timeout: time.Duration(h.Timeout),
	}
	if !slices.Contains(httpMethods, out.Method) {
		c.problemf(child(path, "method"), "unknown method %q (use one of %s)", h.Method, strings.Join(httpMethods, ", "))
	}
	if h.URL == "" {
		c.problemf(child(path, "url"), "required")
	} else if u, err := url.Parse(h.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.problemf(child(path, "url"), "must be an absolute http or https URL, got %q", h.URL)
	}
	for _, name := range slices.Sorted(maps.Keys(h.Headers)) {
		p := child(child(path, "headers"), name)
		if !headerNameRe.MatchString(name) {
			c.problemf(p, "invalid header name %q", name)
		}
		if strings.ContainsAny(h.Headers[name], "\r\n\x00") {
			c.problemf(p, "header value must not contain line breaks or NUL")
		}
	}
	c.nonNegative(child(path, "timeout"), h.Timeout)
	return out
}

// timer checks and compiles a timer step.
func (c *compiler) timer(path string, t *SpecTimer) *TimerSpec {
	out := &TimerSpec{Duration: time.Duration(t.Duration)}
	switch {
	case t.Duration != 0 && t.Until != "":
		c.problemf(path, "set duration or until, not both")
	case t.Duration < 0:
		c.problemf(child(path, "duration"), "must be positive")
	case t.Duration == 0 && t.Until == "":
		c.problemf(path, "set duration (how long to wait) or until (a deadline)")
	}
	out.Until = c.expr(child(path, "until"), t.Until, resultDeadline)
	return out
}

// receive checks and compiles a receive step.
func (c *compiler) receive(path string, r *SpecReceive) *ReceiveSpec {
	if r.Message == "" {
		c.problemf(child(path, "message"), "required")
	}
	c.nonNegative(child(path, "timeout"), r.Timeout)
	return &ReceiveSpec{
		Message:   r.Message,
		Correlate: c.expr(child(path, "correlate"), r.Correlate, resultString),
		Timeout:   time.Duration(r.Timeout),
		Broadcast: r.Broadcast,
	}
}

// human checks and compiles a human step.
func (c *compiler) human(path string, h *SpecHuman) *HumanSpec {
	if h.Role == "" {
		c.problemf(child(path, "role"), "required")
	}
	out := &HumanSpec{Role: h.Role}
	if len(h.Form) > 0 {
		form, err := canonicalForm(h.Form)
		if err != nil {
			c.problemf(child(path, "form"), "%v", err)
		}
		out.Form = form
	}
	return out
}

// childWorkflow checks and compiles a child workflow step.
func (c *compiler) childWorkflow(path string, w *SpecChild) *ChildSpec {
	c.checkWorkflowName(child(path, "name"), w.Name)
	if w.Version < 0 {
		c.problemf(child(path, "version"), "must not be negative (0 means the latest version), got %d", w.Version)
	}
	return &ChildSpec{Name: w.Name, Version: w.Version, Input: c.expr(child(path, "input"), w.Input, resultAny)}
}

// refusingLoader keeps form schemas from loading anything: no files, no
// network.
type refusingLoader struct{}

// Load refuses to load url.
func (refusingLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("cannot load %s: forms must be self-contained", url)
}

// canonicalForm checks that raw is a JSON Schema object and returns it
// re-encoded canonically (compact, keys sorted).
func canonicalForm(raw json.RawMessage) (json.RawMessage, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		return nil, errors.New("must be a JSON Schema object")
	}
	const loc = "urn:ordo:form"
	sc := jsonschema.NewCompiler()
	sc.UseLoader(refusingLoader{})
	if err := sc.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("invalid JSON Schema: %v", err)
	}
	if _, err := sc.Compile(loc); err != nil {
		msg := strings.Join(strings.Fields(err.Error()), " ")
		return nil, fmt.Errorf("invalid JSON Schema: %s", msg)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	return out, nil
}

// canonicalize copies the spec, with forms in canonical form, and encodes
// it into the workflow's Source and Hash. It runs once the spec is valid.
func (c *compiler) canonicalize() error {
	raw, err := json.Marshal(c.spec)
	if err != nil {
		return fmt.Errorf("encoding definition: %w", err)
	}
	spec := new(Spec)
	if err := json.Unmarshal(raw, spec); err != nil {
		return fmt.Errorf("copying definition: %w", err)
	}
	canonicalForms(spec.Steps)
	for i := range spec.Stages {
		canonicalForms(spec.Stages[i].Steps)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(spec); err != nil {
		return fmt.Errorf("encoding definition: %w", err)
	}
	sum := sha256.Sum256(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	c.wf.Spec = spec
	c.wf.Source = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	c.wf.Hash = hex.EncodeToString(sum[:])
	return nil
}

// canonicalForms puts the forms of valid human steps, and the params of
// steps, in canonical form.
func canonicalForms(steps []SpecStep) {
	for i := range steps {
		for s := &steps[i]; s != nil; s = s.Compensate {
			if s.Human != nil && len(s.Human.Form) > 0 {
				// Already checked, so this cannot fail.
				s.Human.Form, _ = canonicalForm(s.Human.Form)
			}
			if len(s.Params) > 0 {
				s.Params, _ = canonicalParams(s.Params)
			}
		}
	}
}
