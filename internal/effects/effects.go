// Package effects performs side effects: the third stage of the pipeline,
// after the triggers and the executor. Handlers return effects as data; the
// engine journals them and hands each to an interpreter registered for its
// type. This package holds the built-in interpreters (http and log) and the
// HTTP call shared by http steps.
package effects

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/propagation"
)

// HTTPRequest is an HTTP call made by an http step or an http side effect.
type HTTPRequest struct {
	Method         string            `json:"method,omitempty"` // defaults to POST
	URL            string            `json:"url"`
	Headers        map[string]string `json:"headers,omitempty"`
	Body           json.RawMessage   `json:"body,omitempty"`
	IdempotencyKey string            `json:"-"`
	Timeout        time.Duration     `json:"-"`
}

// MaxResponseSize caps the response body read from an HTTP call.
const MaxResponseSize = 4 << 20

// StatusError is a non-2xx answer. 5xx, 408 and 429 are retryable.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("http status %d", e.Code)
	}
	return fmt.Sprintf("http status %d: %s", e.Code, e.Body)
}

// Retryable reports whether another try may succeed.
func (e *StatusError) Retryable() bool {
	return e.Code >= 500 || e.Code == http.StatusTooManyRequests || e.Code == http.StatusRequestTimeout
}

// ErrorCode returns "http_<status>".
func (e *StatusError) ErrorCode() string { return fmt.Sprintf("http_%d", e.Code) }

// CallHTTP sends r with its body as JSON and the header Idempotency-Key, and
// returns the response body when it is JSON (else the body as a JSON string,
// or null when empty). A non-2xx answer is a *StatusError.
func CallHTTP(ctx context.Context, client *http.Client, r *HTTPRequest) (json.RawMessage, error) {
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	method := r.Method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if len(r.Body) > 0 && method != http.MethodGet && method != http.MethodHead {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.URL, body)
	if err != nil {
		return nil, &permanent{fmt.Errorf("building request: %w", err)}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if r.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.IdempotencyKey)
	}
	// The trace the call belongs to (the instance's, or a span in ctx) goes
	// with it as W3C traceparent/tracestate headers. A client whose
	// transport traces its calls replaces them with its own span's.
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))
	for k, v := range r.Headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize))
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := string(data)
		if len(msg) > 512 {
			msg = msg[:512]
		}
		return nil, &StatusError{Code: resp.StatusCode, Body: msg}
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return nil, nil
	}
	if json.Valid(data) {
		return data, nil
	}
	return json.Marshal(string(data))
}

type permanent struct{ err error }

func (p *permanent) Error() string   { return p.err.Error() }
func (p *permanent) Unwrap() error   { return p.err }
func (p *permanent) Retryable() bool { return false }

// HTTP performs an http side effect whose payload is an [HTTPRequest].
func HTTP(ctx context.Context, client *http.Client, payload json.RawMessage, key string) error {
	var r HTTPRequest
	if err := json.Unmarshal(payload, &r); err != nil {
		return &permanent{fmt.Errorf("http effect: decoding payload: %w", err)}
	}
	if r.URL == "" {
		return &permanent{errors.New("http effect: payload has no url")}
	}
	r.IdempotencyKey = key
	_, err := CallHTTP(ctx, client, &r)
	return err
}

// LogPayload is the payload of a log side effect.
type LogPayload struct {
	Message string         `json:"message"`
	Level   string         `json:"level,omitempty"` // debug, info (default), warn, error
	Fields  map[string]any `json:"fields,omitempty"`
}

// Log performs a log side effect: it writes the message to logger.
func Log(ctx context.Context, logger *slog.Logger, payload json.RawMessage, attrs ...any) error {
	var p LogPayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return &permanent{fmt.Errorf("log effect: decoding payload: %w", err)}
	}
	level := slog.LevelInfo
	if p.Level != "" {
		if err := level.UnmarshalText([]byte(p.Level)); err != nil {
			return &permanent{fmt.Errorf("log effect: level %q: %w", p.Level, err)}
		}
	}
	for k, v := range p.Fields {
		attrs = append(attrs, k, v)
	}
	logger.Log(ctx, level, p.Message, attrs...)
	return nil
}
