package ordocli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/server"
)

// addObservabilityFlags adds the flags of the log, http and trace
// settings. Their defaults are in configDefaults, not here: a flag counts
// only when given.
func addObservabilityFlags(f *pflag.FlagSet) {
	f.String("log-format", "text", "log format: text or json (env ORDO_LOG_FORMAT)")
	f.String("log-level", "info", "log level: debug, info, warn or error (env ORDO_LOG_LEVEL)")
	f.StringSlice("http-allow-host", nil, "host, host:port, *.domain or CIDR that http steps and effects may call; repeat or comma-separate (env ORDO_HTTP_ALLOW_HOSTS)")
	f.Bool("http-allow-private", false, "let http steps and effects call loopback, private and link-local addresses (env ORDO_HTTP_ALLOW_PRIVATE)")
	f.Duration("http-timeout", 30*time.Second, "timeout of each http step or effect call that sets none (env ORDO_HTTP_TIMEOUT)")
	f.Bool("trace", false, "export OpenTelemetry traces over OTLP/HTTP (on when OTEL_EXPORTER_OTLP_ENDPOINT is set; env ORDO_TRACE)")
}

// parseLevel parses a log level name.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log level %q is not debug, info, warn or error", s)
	}
	return l, nil
}

// runExtras are the log, http and trace settings of a server process.
type runExtras struct {
	logFormat, logLevel string
	policy              *server.HTTPPolicy
	httpTimeout         time.Duration
	trace               bool
	// policyNote says what the http policy allows, for the banner.
	policyNote string
}

// extras returns the log, http and trace settings of the configuration.
func (c *serveConfig) extras() *runExtras {
	note := "public addresses only"
	switch {
	case c.HTTP.AllowPrivate:
		note = "any address (http.allowPrivate)"
	case len(c.HTTP.AllowHosts) > 0:
		note = "only " + strings.Join(c.HTTP.AllowHosts, ", ")
	}
	return &runExtras{
		logFormat: c.Log.Format, logLevel: c.Log.Level,
		policy: c.httpPolicy(), httpTimeout: c.HTTP.Timeout, trace: c.Trace,
		policyNote: note,
	}
}

// devExtras are the settings of `ordo dev`: text logs at info, http calls
// to public and loopback addresses, tracing when OTEL_* says so.
func devExtras() *runExtras {
	return &runExtras{
		logFormat: "text", logLevel: "info",
		policy:      &server.HTTPPolicy{AllowLoopback: true},
		policyNote:  "public and loopback addresses (ordo dev allows loopback; ordo server does not by default)",
		httpTimeout: 30 * time.Second,
	}
}

// summary says in one line how the process will log, call and trace.
func (x *runExtras) summary() string {
	tracing := "off"
	if x.tracingWanted() {
		tracing = "OTLP/HTTP"
	}
	return fmt.Sprintf("logs %s at %s; http steps may call %s; tracing %s", x.logFormat, x.logLevel, x.policyNote, tracing)
}

// tracingWanted reports whether traces are exported: --trace, or an OTLP
// endpoint in the environment.
func (x *runExtras) tracingWanted() bool {
	return x.trace || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// observability is what runExtras set up for one run: the logger, the
// metrics, the HTTP client of the engine and the tracer.
type observability struct {
	x       *runExtras
	logger  *slog.Logger
	metrics *server.Metrics
	client  *http.Client
	tp      *sdktrace.TracerProvider // nil when not tracing
}

// start builds the logger, metrics, HTTP client and, when wanted, the
// tracer exporting over OTLP/HTTP (configured by the OTEL_* variables).
func (x *runExtras) start(ctx context.Context, stderr io.Writer) (*observability, error) {
	level, err := parseLevel(x.logLevel)
	if err != nil {
		return nil, &usageError{err}
	}
	hopts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch x.logFormat {
	case "json":
		h = slog.NewJSONHandler(stderr, hopts)
	case "text", "":
		h = slog.NewTextHandler(stderr, hopts)
	default:
		return nil, &usageError{fmt.Errorf("log format %q is not text or json", x.logFormat)}
	}
	o := &observability{x: x, logger: slog.New(h), metrics: server.NewMetrics()}
	transport, err := x.policy.Transport()
	if err != nil {
		return nil, &usageError{err}
	}
	var rt http.RoundTripper = transport
	if x.tracingWanted() {
		if p := os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "http/protobuf" {
			return nil, &usageError{fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: ordo exports traces over http/protobuf only", p)}
		}
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
		res := resource.Default()
		if os.Getenv("OTEL_SERVICE_NAME") == "" {
			res, _ = resource.Merge(res, resource.NewSchemaless(attribute.String("service.name", "ordo")))
		}
		o.tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		rt = otelhttp.NewTransport(transport, otelhttp.WithTracerProvider(o.tp), otelhttp.WithPropagators(propagation.TraceContext{}))
		// Engine lines carry the trace of the instance they are about.
		o.logger = slog.New(traceLogHandler{h})
	}
	o.client = &http.Client{Transport: rt, Timeout: x.httpTimeout}
	return o, nil
}

// engineConfig is the engine's configuration.
func (o *observability) engineConfig() *ordo.Config {
	return &ordo.Config{Logger: o.logger, HTTPClient: o.client, Observer: o.metrics.Observer()}
}

// serverOptions sets the metrics and tracer of the server's options.
func (o *observability) serverOptions(opts *server.Options) {
	opts.Metrics = o.metrics
	if o.tp != nil {
		opts.TracerProvider = o.tp
	}
}

// describe prints the lines of the start banner about metrics, http calls
// and tracing.
func (o *observability) describe(w io.Writer, base string) {
	fmt.Fprintf(w, "  metrics   %s/metrics (Prometheus)\n", base)
	fmt.Fprintf(w, "  http      steps and effects may call %s\n", o.x.policyNote)
	if o.tp != nil {
		fmt.Fprintln(w, "  tracing   OpenTelemetry, OTLP/HTTP (OTEL_* settings)")
	}
}

// close flushes the traces still buffered.
func (o *observability) close(ctx context.Context, stderr io.Writer) {
	if o == nil || o.tp == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := o.tp.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(stderr, "flushing traces: %v\n", err)
	}
}

// traceLogHandler adds the trace and span ids of the context's span to
// each line.
type traceLogHandler struct{ slog.Handler }

func (h traceLogHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() && !hasAttr(r, "trace_id") {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceLogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceLogHandler{h.Handler.WithAttrs(attrs)}
}

func (h traceLogHandler) WithGroup(name string) slog.Handler {
	return traceLogHandler{h.Handler.WithGroup(name)}
}

func hasAttr(r slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}
