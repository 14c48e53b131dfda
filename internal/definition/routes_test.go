package definition

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParse_Payment(t *testing.T) {
	t.Parallel()

	w := mustParseFile(t, "payment.yaml")

	require.Equal(t, 50, w.MaxConcurrent)
	require.Equal(t, 8*24*time.Hour, w.Timeout)
	require.Equal(t, FailureCompensate, w.OnFailure)
	require.Equal(t, "input.customerId", w.ConcurrencyKey.Source)
	require.Equal(t, []string{"reserve", "charge", "ship", "ask-new-card", "wait-card", "give-up"}, ids(w.Steps))
	require.Equal(t, []string{"reserve"}, ids(w.Roots))

	reserve := w.Step("reserve")
	require.Zero(t, reserve.Heartbeat)
	require.Equal(t, 10*time.Second, reserve.Compensate.Heartbeat)
	require.Nil(t, reserve.OnError)

	charge := w.Step("charge")
	require.Equal(t, 30*time.Second, charge.Heartbeat)
	require.Equal(t, []ErrorRoute{
		{Codes: []string{"card_declined", "card_expired"}, Next: []string{"ask-new-card"}},
		{Codes: []string{"goods_unavailable"}, Compensate: true},
		{Next: []string{"give-up"}},
	}, charge.OnError)
	require.Same(t, &charge.OnError[0], charge.ErrorRoute("card_declined"))
	require.Same(t, &charge.OnError[0], charge.ErrorRoute("card_expired"))
	require.Same(t, &charge.OnError[1], charge.ErrorRoute("goods_unavailable"))
	require.Same(t, &charge.OnError[2], charge.ErrorRoute("timeout"))
	require.Same(t, &charge.OnError[2], charge.ErrorRoute(""))
	require.Empty(t, charge.Next)
	require.Zero(t, charge.MaxIterations)

	ship := w.Step("ship")
	require.Equal(t, KindWorkflow, ship.Kind)
	require.Equal(t, "shipping", ship.Child.Name)
	require.Equal(t, 3, ship.Child.Version)

	wait := w.Step("wait-card")
	require.True(t, wait.Receive.Broadcast)
	require.Equal(t, 7*24*time.Hour, wait.Receive.Timeout)
	require.Equal(t, []string{"give-up"}, wait.OnTimeout)
	require.Equal(t, "charge", wait.Next)
	require.Equal(t, 3, wait.MaxIterations)

	for _, id := range []string{"ask-new-card", "wait-card", "give-up"} {
		require.True(t, w.Step(id).ErrorPathOnly, id)
	}
	for _, id := range []string{"reserve", "charge", "ship"} {
		require.False(t, w.Step(id).ErrorPathOnly, id)
	}

	require.Equal(t, []string{"charge", "ship", "ask-new-card", "wait-card", "give-up"}, w.Reachable("charge"))
	require.Equal(t, []string{"wait-card", "give-up"}, w.Reachable("wait-card"), "onTimeout targets are reached too")
	require.Equal(t, []string{"give-up"}, w.Reachable("give-up"))
	require.Nil(t, w.Reachable("nope"))
	require.Nil(t, w.Reachable("charge.compensate"), "compensation steps are not in Steps")
}

func TestErrorRoute_NoCatchAll(t *testing.T) {
	t.Parallel()

	w, err := Parse([]byte(`
workflow: w
steps:
  - id: a
    task: {queue: q}
    onError:
      - {codes: x, next: b}
  - {id: b, task: {queue: q}}
`), "")
	require.NoError(t, err)
	a := w.Step("a")
	require.Equal(t, []ErrorRoute{{Codes: []string{"x"}, Next: []string{"b"}}}, a.OnError)
	require.NotNil(t, a.ErrorRoute("x"))
	require.Nil(t, a.ErrorRoute("y"), "no route matches: the workflow's failure mode applies")
	require.Nil(t, a.ErrorRoute(""))
	require.Nil(t, w.Step("b").ErrorRoute("x"), "a step without onError has no route")
}

func TestParse_ErrorRoutesShortFormsAreOneRoute(t *testing.T) {
	t.Parallel()

	tmpl := "workflow: w\nsteps:\n  - id: a\n    task: {queue: q}\n    onError: %s\n  - {id: b, task: {queue: q}}\n  - {id: c, task: {queue: q}}\n"
	forms := []string{
		"[b, c]",
		"[{next: [b, c]}]",
		"\n      - next: [b, c]",
		"\n      - b\n      - c",
	}
	var want *Workflow
	for i, form := range forms {
		w, err := Parse([]byte(strings.Replace(tmpl, "%s", form, 1)), "")
		require.NoError(t, err, form)
		require.Equal(t, []ErrorRoute{{Next: []string{"b", "c"}}}, w.Step("a").OnError, form)
		require.Contains(t, string(w.Source), `"onError":["b","c"]`, "one route without codes is written in the short form")
		if i == 0 {
			want = w
			continue
		}
		require.Equal(t, want.Hash, w.Hash, form)
	}

	single, err := Parse([]byte(strings.Replace(tmpl, "%s", "b", 1)), "")
	require.NoError(t, err)
	long, err := Parse([]byte(strings.Replace(tmpl, "%s", "[{next: b}]", 1)), "")
	require.NoError(t, err)
	require.Equal(t, single.Hash, long.Hash)
	require.Contains(t, string(single.Source), `"onError":["b"]`)

	json := `{"workflow": "w", "steps": [{"id": "a", "task": {"queue": "q"}, "onError": [{"next": "b"}, {"codes": ["x"], "compensate": true}]}, {"id": "b", "task": {"queue": "q"}}]}`
	_, err = Parse([]byte(json), "w.json")
	var verr *ValidationError
	require.ErrorAs(t, err, &verr)
	require.Equal(t, `w.json:1:77: step "a": onError: a route without codes matches every error, so only the last route may leave codes out`, verr.Error())

	routes, err := Parse([]byte(`{"workflow": "w", "steps": [{"id": "a", "task": {"queue": "q"}, "onError": [{"codes": "x", "compensate": true}, {"next": "b"}]}, {"id": "b", "task": {"queue": "q"}}]}`), "w.json")
	require.NoError(t, err)
	require.Contains(t, string(routes.Source), `"onError":[{"codes":["x"],"compensate":true},{"next":["b"]}]`)
	again, err := Parse(routes.Source, "")
	require.NoError(t, err)
	require.Equal(t, routes.Hash, again.Hash)
}

func TestParse_BackEdges(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name      string
		src       string
		step      string
		next      string
		max       int
		reachable []string
	}{
		{
			"ThroughAfter",
			"workflow: w\nsteps:\n  - {id: a, task: {queue: q}}\n  - {id: b, after: a, task: {queue: q}}\n  - {id: c, after: b, task: {queue: q}, when: outputs.b.again, next: b}\n  - {id: d, after: c, task: {queue: q}}\n",
			"c", "b", DefaultMaxIterations, []string{"b", "c", "d"},
		},
		{
			"ThroughOnError",
			"workflow: w\nsteps:\n  - {id: a, task: {queue: q}, onError: fix}\n  - {id: fix, task: {queue: q}, next: a, maxIterations: 1000}\n",
			"fix", "a", 1000, []string{"a", "fix"},
		},
		{
			"ThroughOnTimeout",
			"workflow: w\nsteps:\n  - {id: a, task: {queue: q}, timeout: 1m, onTimeout: [poke]}\n  - {id: poke, task: {queue: q}, next: a, maxIterations: 1}\n",
			"poke", "a", 1, []string{"a", "poke"},
		},
		{
			"InStages",
			"workflow: w\nstages:\n  - name: one\n    steps: [{id: a, task: {queue: q}}]\n  - name: two\n    steps: [{id: b, task: {queue: q}, next: a}]\n",
			"b", "a", DefaultMaxIterations, []string{"a", "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w, err := Parse([]byte(tt.src), "")
			require.NoError(t, err)
			s := w.Step(tt.step)
			require.Equal(t, tt.next, s.Next)
			require.Equal(t, tt.max, s.MaxIterations)
			require.Equal(t, tt.reachable, w.Reachable(tt.next))
			require.Contains(t, w.Reachable(tt.next), tt.step, "the step is reachable from its target")
		})
	}
}

func TestParse_InvalidNewFields(t *testing.T) {
	t.Parallel()

	const two = "  - {id: b, task: {queue: q}}\n  - {id: c, task: {queue: q}}\n"
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"RouteDoesNothing", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError:\n      - codes: [e]\n" + two,
			`wf.yaml:6:9: step "a": onError: the route does nothing: set next (the steps to go to) or compensate: true`},
		{"RouteCompensateFalse", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError: [{compensate: false}]\n" + two,
			`wf.yaml:5:15: step "a": onError: the route does nothing: set next (the steps to go to) or compensate: true`},
		{"RouteBoth", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError:\n      - {codes: [e], next: b, compensate: true}\n" + two,
			`wf.yaml:6:43: step "a": onError.compensate: set next or compensate, not both`},
		{"CatchAllNotLast", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError:\n      - next: b\n      - codes: [e]\n        next: c\n" + two,
			`wf.yaml:6:9: step "a": onError: a route without codes matches every error, so only the last route may leave codes out`},
		{"EmptyCodes", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError:\n      - {codes: [], next: b}\n" + two,
			`wf.yaml:6:17: step "a": onError.codes: must list at least one error code; leave codes out to match every error`},
		{"BadCodes", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError:\n      - {codes: [e, '', e], next: b}\n      - {codes: [f, e], compensate: true}\n" + two,
			`wf.yaml:6:21: step "a": onError.codes: an error code must not be empty` + "\n" +
				`wf.yaml:6:25: step "a": onError.codes: code "e" is listed twice` + "\n" +
				`wf.yaml:7:21: step "a": onError.codes: code "e" is already matched by an earlier route`},
		{"NullCode", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError:\n      - {codes: [null], next: b}\n" + two,
			`wf.yaml:6:18: step "a": onError.codes: must be a string`},
		{"RouteUnknownStep", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError:\n      - codes: [e]\n        next: [b, cc]\n      - next: a\n" + two,
			`wf.yaml:7:19: step "a": onError.next: unknown step "cc" (did you mean "c"?)` + "\n" +
				`wf.yaml:8:15: step "a": onError.next: step "a" cannot be its own error handler`},
		{"SingleRouteUnknownStep", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError:\n      - next: [b, nope]\n" + two,
			`wf.yaml:6:19: step "a": onError: unknown step "nope"`},
		{"RouteListedTwice", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError:\n      - {codes: [e], next: [b, b]}\n      - next: b\n" + two,
			`wf.yaml:6:32: step "a": onError.next: step "b" is listed twice`},
		{"MixedForms", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError: [b, {next: c}]\n" + two,
			`wf.yaml:5:15: step "a": onError: must be a route such as {codes: [card_declined], next: ask-new-card}; write every element as a route, not a step id`},
		{"RoutesMapping", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError: {next: b}\n" + two,
			`wf.yaml:5:14: step "a": onError: must be a step id, a list of step ids or a list of routes`},
		{"RouteUnknownField", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    onError: [{code: [e], next: b}]\n" + two,
			`wf.yaml:5:16: step "a": onError.code: unknown field (did you mean "codes"?)`},
		{"NextUnknown", "workflow: x\nsteps:\n  - id: charge\n    task: {queue: q}\n  - id: b\n    after: charge\n    task: {queue: q}\n    next: chrage\n",
			`wf.yaml:8:11: step "b": next: unknown step "chrage" (did you mean "charge"?)`},
		{"NextSelf", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    next: a\n",
			`wf.yaml:5:11: step "a": next: step "a" cannot go back to itself (to run a step again when it fails, use retry)`},
		{"NextForward", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    next: b\n  - id: b\n    after: a\n    task: {queue: q}\n",
			`wf.yaml:5:11: step "a": next: "b" is not an earlier step of "a"; only a back-edge to an earlier step is allowed (one this step can be reached from through after, onError or onTimeout)`},
		{"NextSideBranch", "workflow: x\nsteps:\n  - {id: a, task: {queue: q}}\n  - {id: b, after: a, task: {queue: q}}\n  - {id: c, after: a, task: {queue: q}, next: b}\n",
			`wf.yaml:5:47: step "c": next: "b" is not an earlier step of "c"; only a back-edge to an earlier step is allowed (one this step can be reached from through after, onError or onTimeout)`},
		{"MaxIterationsWithoutNext", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    maxIterations: 3\n",
			`wf.yaml:5:20: step "a": maxIterations: only allowed with next (a back-edge)`},
		{"MaxIterationsRange", "workflow: x\nsteps:\n  - {id: a, task: {queue: q}}\n  - {id: b, after: a, task: {queue: q}, next: a, maxIterations: 0}\n  - {id: c, after: a, task: {queue: q}, next: a, maxIterations: 1001}\n  - {id: d, after: a, task: {queue: q}, next: a, maxIterations: ten}\n",
			`wf.yaml:4:65: step "b": maxIterations: must be between 1 and 1000, got 0` + "\n" +
				`wf.yaml:5:65: step "c": maxIterations: must be between 1 and 1000, got 1001` + "\n" +
				`wf.yaml:6:65: step "d": maxIterations: must be an integer`},
		{"NextInCompensation", "workflow: x\nsteps:\n  - id: a\n    task: {queue: q}\n    compensate: {task: {queue: q}, next: a, maxIterations: 2}\n",
			`wf.yaml:5:42: step "a": compensate.next: not allowed in a compensation step` + "\n" +
				`wf.yaml:5:60: step "a": compensate.maxIterations: not allowed in a compensation step`},
		{"AfterCycleStillRejected", "workflow: x\nsteps:\n  - {id: s, task: {queue: q}}\n  - {id: a, after: [s, b], task: {queue: q}}\n  - {id: b, after: a, task: {queue: q}, next: a}\n",
			`wf.yaml:4:20: step "a": after: dependency cycle: "a" comes after "b", "b" after "a"`},
		{"Heartbeat", "workflow: x\nsteps:\n  - id: a\n    timer: {duration: 1s}\n    heartbeat: 10s\n  - id: b\n    task: {queue: q}\n    heartbeat: 10\n  - id: c\n    task: {queue: q}\n    compensate: {http: {url: 'https://x'}, heartbeat: 5s}\n",
			`wf.yaml:5:16: step "a": heartbeat: only task steps have a heartbeat, this is a timer step` + "\n" +
				`wf.yaml:8:16: step "b": heartbeat: must be a duration with a unit, such as 30s or PT30S, not a bare number` + "\n" +
				`wf.yaml:11:55: step "c": compensate.heartbeat: only task steps have a heartbeat, this is a http step`},
		{"ChildVersion", "workflow: x\nsteps:\n  - id: a\n    workflow: {name: child, version: -1}\n  - id: b\n    workflow: {name: child, version: latest}\n",
			`wf.yaml:4:38: step "a": workflow.version: must not be negative (0 means the latest version), got -1` + "\n" +
				`wf.yaml:6:38: step "b": workflow.version: must be an integer`},
		{"MaxConcurrent", "workflow: x\nmaxConcurrent: -2\nsteps:\n  - {id: a, task: {queue: q}}\n",
			`wf.yaml:2:16: maxConcurrent: must not be negative (0 means no limit), got -2`},
		{"Broadcast", "workflow: x\nsteps:\n  - id: a\n    receive: {message: m, broadcast: yes please}\n",
			`wf.yaml:4:38: step "a": receive.broadcast: must be true or false`},
		{"OnTimeoutWithoutTimeout", "workflow: x\nsteps:\n  - id: a\n    human: {role: r}\n    onTimeout: b\n" + two,
			`wf.yaml:5:16: step "a": onTimeout: the step has no timeout (set timeout, or receive.timeout)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, parseErr(t, tt.src))
		})
	}
}

func TestCompile_InvalidNewFields(t *testing.T) {
	t.Parallel()

	task := &TaskSpec{Queue: "q"}
	_, err := Compile(&Spec{
		Workflow:      "x",
		MaxConcurrent: -1,
		Steps: []SpecStep{
			{ID: "a", Task: task, Heartbeat: Duration(-time.Second), OnError: ErrorRoutes{{Next: StringList{"b"}}, {Codes: StringList{}, Compensate: true}}},
			{ID: "b", Task: task, Next: "a", MaxIterations: ptr(-3)},
			{ID: "c", Workflow: &SpecChild{Name: "child", Version: -1}},
		},
	})
	require.EqualError(t, err, "maxConcurrent: must not be negative (0 means no limit), got -1\n"+
		`step "a": heartbeat: must not be negative`+"\n"+
		`step "a": onError: a route without codes matches every error, so only the last route may leave codes out`+"\n"+
		`step "a": onError.codes: must list at least one error code; leave codes out to match every error`+"\n"+
		`step "b": maxIterations: must be between 1 and 1000, got -3`+"\n"+
		`step "c": workflow.version: must not be negative (0 means the latest version), got -1`)
}
