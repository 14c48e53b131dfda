package engine

import (
	"context"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordoflow/ordo/internal/journal"
)

// Observer is told about every commit that appended events to an
// instance: its state before (nil for a new instance) and after, and the
// events. It runs on the engine's goroutines after the commit, outside the
// instance's lock; it must be quick, must not block and must not modify
// what it is given.
type Observer func(before, after *journal.State, events []*journal.Event)

// traceContext is the W3C Trace Context propagator: the engine reads and
// writes the traceparent (and tracestate) of an instance with it, whether
// or not the process has a tracer.
var traceContext propagation.TraceContext

// TraceParent returns the W3C traceparent of the span in ctx, or "" when
// ctx carries none.
func TraceParent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return "" // the common case, without allocating
	}
	carrier := propagation.MapCarrier{}
	traceContext.Inject(ctx, carrier)
	return carrier["traceparent"]
}

// withTraceParent returns ctx carrying traceParent as its remote parent
// span, so that handlers and outgoing calls continue the instance's trace.
func withTraceParent(ctx context.Context, traceParent string) context.Context {
	if traceParent == "" {
		return ctx
	}
	return traceContext.Extract(ctx, propagation.MapCarrier{"traceparent": traceParent})
}
