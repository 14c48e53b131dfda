// Package server runs Ordo's HTTP JSON API over an [ordo.Engine]: deploy
// definitions, start instances, read their state and journal, resubmit and
// cancel them. It is what `ordo server` and `ordo dev` run, and it is a
// library too: tests and Go services can start it in-process on port 0, or
// mount [Server.Handler] in their own HTTP server.
//
// # Routes
//
// Every route is listed in the OpenAPI 3.1 document the server serves at
// /api/v1/openapi.json (the file openapi.json next to this package); a test
// checks that the document and the routes agree both ways. Requests and
// answers are the types of package ordoclient, which is also the Go client.
//
// # Errors
//
// Every error answer is JSON, {"error": {"code", "number", "message",
// "details"}}, with a stable code from [ordoclient.Codes] and the HTTP status
// that goes with it. A request that is refused stores nothing.
//
// # Security
//
// [Options.Tokens] maps bearer tokens to roles: [RoleReader] may read,
// [RoleOperator] may also start, resubmit and cancel instances, [RoleAdmin]
// may also deploy definitions. A human task assigned to a role (`human:
// {role: approver}`) may be completed or failed only with a token that
// carries that role too ([Options.TaskRoles]). Without tokens the API is open, which [New]
// allows only on a loopback address unless [Options.Insecure] is set.
// /healthz, /readyz and /api/v1/openapi.json never need a token.
//
// # Observability
//
// GET /metrics serves Prometheus metrics ([Metrics]); each request is
// logged in one line with its route, status, duration and X-Request-Id;
// [Options.TracerProvider] traces requests with OpenTelemetry. See
// docs/operations-metrics.md.
//
// # Outgoing calls
//
// [HTTPPolicy] keeps the http steps and http side effects of an engine
// away from loopback, private and link-local addresses and outside an
// allow-list; `ordo server` applies it to its engine.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordoclient"
)

// DefaultAddr is the address the server listens on when [Options.Addr] is
// empty.
const DefaultAddr = "127.0.0.1:7070"

// DefaultMaxBodyBytes is the request body limit when
// [Options.MaxBodyBytes] is 0: 1 MiB.
const DefaultMaxBodyBytes = 1 << 20

// Role is what a token may do. Each role may do what the roles before it
// may.
type Role string

// Roles, from least to most allowed.
const (
	// RoleReader may read definitions, instances and journals.
	RoleReader Role = "reader"
	// RoleOperator may also start, resubmit and cancel instances.
	RoleOperator Role = "operator"
	// RoleAdmin may also deploy definitions.
	RoleAdmin Role = "admin"
)

// rank orders the roles; 0 is no role.
func (r Role) rank() int {
	switch r {
	case RoleReader:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is one of the defined roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// Options configure a [Server].
type Options struct {
	// Engine runs the workflows. Required. The server does not close it:
	// stop the server first, then close the engine.
	Engine *ordo.Engine
	// Addr is the TCP address [Server.Start] listens on, host:port. Port 0
	// picks a free port; [Server.Addr] tells which. Defaults to
	// 127.0.0.1:7070.
	Addr string
	// Tokens maps bearer tokens to their roles. When empty, the API is open
	// to anyone who can reach it, which is allowed only on a loopback
	// address (127.0.0.0/8, ::1, localhost) or with Insecure.
	Tokens map[string]Role
	// TaskRoles gives tokens of Tokens the roles human tasks are assigned
	// to: a human step with `role: approver` may be completed or failed
	// only with a token whose list holds "approver" (and whose role in
	// Tokens is operator or admin). These roles grant nothing else. When
	// Tokens is empty (an open server) anyone may complete any human task.
	TaskRoles map[string][]string
	// Insecure allows running with no Tokens on an address that is not
	// loopback. It does not turn authentication off when Tokens are given.
	Insecure bool
	// MaxBodyBytes caps the size of a request body; a larger one is refused
	// with 413. Defaults to 1 MiB.
	MaxBodyBytes int64
	// Logger receives the server's logs, one line per request at info
	// level (see docs/operations-metrics.md). Defaults to warn level on
	// stdout.
	Logger *slog.Logger
	// HealthOnly serves only /healthz, /readyz and the OpenAPI document,
	// and answers every other /api/v1 route with 503 unavailable: a node
	// that does not run the api role (ordo server --roles).
	HealthOnly bool

	// Metrics are served at /metrics. Defaults to new metrics that count
	// only what the store tells; see [Metrics] to count what the engine
	// does.
	Metrics *Metrics
	// TracerProvider, when set, traces every request in a span that
	// continues the request's W3C trace context; instances started by a
	// request keep its trace. Defaults to no tracing.
	TracerProvider trace.TracerProvider
}

func (o *Options) validate() error {
	if o.Engine == nil {
		return errors.New("server: Options.Engine is required (open one with ordo.Open)")
	}
	if o.MaxBodyBytes < 0 {
		return errors.New("server: Options.MaxBodyBytes must not be negative")
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return fmt.Errorf("server: Options.Addr %q: %w", o.Addr, err)
	}
	for tok, role := range o.Tokens {
		if tok == "" {
			return errors.New("server: Options.Tokens has an empty token")
		}
		if !role.Valid() {
			return fmt.Errorf("server: Options.Tokens: role %q is not reader, operator or admin", role)
		}
	}
	for tok, roles := range o.TaskRoles {
		if _, ok := o.Tokens[tok]; !ok {
			return errors.New("server: Options.TaskRoles has a token that is not in Options.Tokens")
		}
		for _, r := range roles {
			if strings.TrimSpace(r) == "" {
				return errors.New("server: Options.TaskRoles has an empty role")
			}
		}
	}
	if len(o.Tokens) == 0 && !o.Insecure && !IsLoopback(host) {
		return fmt.Errorf("server: refusing to serve %s without authentication: give Options.Tokens, listen on a loopback address, or set Options.Insecure", o.Addr)
	}
	return nil
}

// IsLoopback reports whether host (an IP address or "localhost") only
// accepts connections from this machine. An empty host (all interfaces) is
// not loopback.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Server serves the HTTP API of one engine. Create it with [New].
type Server struct {
	eng     *ordo.Engine
	addr    string
	maxBody int64
	auth    *authenticator
	logger  *slog.Logger
	metrics *Metrics
	// metricsHandler serves metrics at /metrics.
	metricsHandler http.Handler
	mux            *http.ServeMux
	handler        http.Handler
	stopping       atomic.Bool
	// stopCtx ends when Stop is called: waiting task polls answer then.
	stopCtx  context.Context
	stopPoll context.CancelFunc

	mu      sync.Mutex // guards the fields below
	srv     *http.Server
	ln      net.Listener
	served  chan struct{} // closed when Serve has returned
	stopped bool
}

// New returns a server for opts.Engine. It does not listen yet: call
// [Server.Start], or mount [Server.Handler].
//
// It returns an error for invalid options, and when there are no tokens on
// an address that is not loopback and Insecure is not set.
func New(opts *Options) (*Server, error) {
	if opts == nil {
		opts = &Options{}
	}
	o := *opts
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	s := &Server{
		eng:     o.Engine,
		addr:    o.Addr,
		maxBody: o.MaxBodyBytes,
		auth:    newAuthenticator(o.Tokens, o.TaskRoles),
		logger:  o.Logger,
		metrics: o.Metrics,
		mux:     http.NewServeMux(),
	}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	if err := s.metrics.attach(o.Engine); err != nil {
		return nil, err
	}
	s.metricsHandler = s.metrics.handler(slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn))
	s.stopCtx, s.stopPoll = context.WithCancel(context.Background())
	for _, rt := range routes() {
		if o.HealthOnly && rt.Role != "" {
			continue
		}
		s.mux.Handle(rt.Method+" "+rt.Path, s.endpoint(rt))
	}
	if o.HealthOnly {
		s.mux.Handle("/api/v1/", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			errorf(ordoclient.CodeUnavailable, "this node does not run the api role: send API requests to a node that does").write(w)
		}))
	}
	s.handler = s.logRequests(http.HandlerFunc(s.serveHTTP))
	if o.TracerProvider != nil {
		s.handler = s.traceRequests(s.handler, o.TracerProvider)
	}
	return s, nil
}

// Handler returns the server's routes as an http.Handler, to mount in
// another server. It answers the same as a started server.
func (s *Server) Handler() http.Handler { return s.handler }

// AuthEnabled reports whether requests need a bearer token.
func (s *Server) AuthEnabled() bool { return s.auth.enabled() }

// Start listens on [Options.Addr] and serves in the background. It returns
// once the listener is bound (see [Server.Addr]), or the error from
// binding it. It returns an error when called twice or after Stop.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("server: Start after Stop")
	}
	if s.srv != nil {
		return errors.New("server: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("server: listening on %s: %w", s.addr, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	s.srv, s.ln, s.served = srv, ln, make(chan struct{})
	go func() {
		defer close(s.served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("server stopped serving", "error", err)
		}
	}()
	return nil
}

// Addr returns the address the server listens on (with the port picked
// when [Options.Addr] had port 0), or "" before [Server.Start].
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Stop stops taking new connections and waits for the requests in progress
// to finish, until ctx is done, when it closes the remaining connections
// and returns ctx's error. /readyz answers 503 from the moment Stop is
// called. It is safe to call twice, and before Start.
func (s *Server) Stop(ctx context.Context) error {
	s.stopping.Store(true)
	s.stopPoll()
	s.mu.Lock()
	srv, served, already := s.srv, s.served, s.stopped
	s.stopped = true
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	if already {
		select {
		case <-served:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, srv.Close())
	}
	<-served
	return err
}
