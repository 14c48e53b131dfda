package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Log attribute keys of request logs. The instance and step keys are the
// engine's, so that a request's line and the engine's lines about the same
// instance can be found together.
const (
	logInstance  = "ordo.instance.id"
	logStep      = "ordo.step.id"
	logRequestID = "request_id"
	logTraceID   = "trace_id"
)

// RequestIDHeader is the header that carries a request's id: taken from
// the request when it has a usable one, else made up, and always sent back.
const RequestIDHeader = "X-Request-Id"

// requestInfo is what the handlers learn about a request that its log line
// should carry. The middleware puts it in the request's context.
type requestInfo struct {
	instanceID string
	step       string
}

type requestInfoKey struct{}

// noteInstance records the instance (and step, when not "") a request is
// about, for its log line.
func noteInstance(r *http.Request, id, step string) {
	if info, ok := r.Context().Value(requestInfoKey{}).(*requestInfo); ok {
		if id != "" {
			info.instanceID = id
		}
		if step != "" {
			info.step = step
		}
	}
}

// instanceRoute reports whether a route's {id} is an instance id. Other
// routes about an instance (a task's, say) call noteInstance themselves.
func instanceRoute(path string) bool { return strings.HasPrefix(path, "/api/v1/instances/{id}") }

// requestID returns the request's X-Request-Id when it is a sensible id
// (1 to 128 printable ASCII characters), else a new random one.
func requestID(r *http.Request) string {
	if id := r.Header.Get(RequestIDHeader); id != "" && len(id) <= 128 {
		ok := true
		for i := 0; i < len(id); i++ {
			if id[i] < 0x21 || id[i] > 0x7e {
				ok = false
				break
			}
		}
		if ok {
			return id
		}
	}
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter records the status of an answer.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// routePattern returns the route a request goes to ("GET
// /api/v1/instances/{id}"), or "" when no route matches.
func (s *Server) routePattern(r *http.Request) string {
	_, pattern := s.mux.Handler(r)
	return pattern
}

// quietRoutes are logged at debug level when they succeed: probes and
// scrapes come every few seconds, and workers poll, heartbeat and complete
// tasks many times a second (the journal keeps what they did).
var quietRoutes = map[string]bool{
	"GET /healthz": true, "GET /readyz": true, "GET /metrics": true,
	"POST /api/v1/tasks/poll": true, "POST /api/v1/tasks/{id}/heartbeat": true,
	"POST /api/v1/tasks/{id}/complete": true, "POST /api/v1/tasks/{id}/fail": true,
}

// logRequests wraps h: each request gets a request id (sent back in
// X-Request-Id) and one log line with its method, route, status, duration,
// request id, trace id, and the instance and step it was about, and is
// counted in the metrics.
func (s *Server) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID(r)
		w.Header().Set(RequestIDHeader, id)
		info := &requestInfo{}
		r = r.WithContext(context.WithValue(r.Context(), requestInfoKey{}, info))
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			route := s.routePattern(r)
			label := route
			if label == "" {
				label = "unmatched"
			}
			s.metrics.requests.WithLabelValues(label, strconv.Itoa(status)).Inc()
			level := slog.LevelInfo
			switch {
			case status >= 500:
				level = slog.LevelError
			case status < 400 && quietRoutes[route]:
				level = slog.LevelDebug
			}
			ctx := r.Context()
			if !s.logger.Enabled(ctx, level) {
				return
			}
			attrs := make([]slog.Attr, 0, 9)
			attrs = append(attrs,
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", time.Since(start)),
				slog.String(logRequestID, id),
			)
			if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
				attrs = append(attrs, slog.String(logTraceID, sc.TraceID().String()))
			}
			if info.instanceID != "" {
				attrs = append(attrs, slog.String(logInstance, info.instanceID))
			}
			if info.step != "" {
				attrs = append(attrs, slog.String(logStep, info.step))
			}
			s.logger.LogAttrs(ctx, level, "request", attrs...)
		}()
		h.ServeHTTP(sw, r)
	})
}

// traceRequests wraps h in an OpenTelemetry span per request, continuing
// the W3C trace context of the request (traceparent, tracestate) when it
// has one. The span is named after the route.
func (s *Server) traceRequests(h http.Handler, tp trace.TracerProvider) http.Handler {
	return otelhttp.NewHandler(h, "ordo",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if p := s.routePattern(r); p != "" {
				return p
			}
			return r.Method + " unmatched"
		}),
	)
}
