package executor

import (
	"context"
	"encoding/json"
	"testing"
)

// BenchmarkDecide_StepDone measures the decision after a step completes in
// the order workflow (the join's sibling finishing and ship becoming ready).
func BenchmarkDecide_StepDone(b *testing.B) {
	def, err := parseBench(orderYAML)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	d, _ := Decide(ctx, def, nil, Start{ID: "i1", Input: json.RawMessage(`{"orderId":"o-1","vip":false}`)}, t0, nil)
	d, _ = Decide(ctx, def, d.State, done("pay", 1, `{"ok":true}`), t0, nil)
	d, _ = Decide(ctx, def, d.State, done("reserve", 1, `{"ok":true}`), t0, nil)
	st := d.State
	cmd := done("label", 1, `{"ok":true}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decide(ctx, def, st, cmd, t0, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecide_Start measures starting an instance, including the CEL
// evaluation of a when condition.
func BenchmarkDecide_StartWithWhen(b *testing.B) {
	def, err := parseBench(orderYAML)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	d, _ := Decide(ctx, def, nil, Start{ID: "i1", Input: json.RawMessage(`{"orderId":"o-1","vip":true}`)}, t0, nil)
	st := d.State
	cmd := done("pay", 1, `{"ok":true}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decide(ctx, def, st, cmd, t0, nil); err != nil {
			b.Fatal(err)
		}
	}
}
