package ordocli

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/server"
)

// devWorkflow is a copy of examples/order-fulfilment/workflow.yaml, which
// `ordo dev` deploys. A test keeps the two the same.
//
//go:embed devdata/order-fulfilment.yaml
var devWorkflow []byte

// shutdownTimeout bounds a graceful stop: requests in progress finish, then
// the engine finishes or hands back its work.
const shutdownTimeout = 30 * time.Second

// serveConfig is the configuration of `ordo server`: flags override
// environment variables, which override the config file.
type serveConfig struct {
	// DB is the SQLite file or a postgres:// URL.
	DB string `yaml:"db"`
	// Schema is the PostgreSQL schema ("" is public).
	Schema string `yaml:"schema"`
	// Migrate applies the store's migrations at start (nil: true).
	Migrate *bool `yaml:"migrate"`
	// Roles is the comma-separated list of roles this node runs ("" is all).
	Roles string `yaml:"roles"`
	// Addr is host:port to listen on.
	Addr string `yaml:"addr"`
	// Insecure allows serving without tokens on a non-loopback address.
	Insecure bool `yaml:"insecure"`
	// Tokens maps bearer tokens to their roles: one of reader, operator
	// and admin, and the roles of human tasks the token may complete
	// ("operator" or [operator, approver]).
	Tokens map[string][]string `yaml:"tokens"`
	// MaxBodyBytes caps request bodies; 0 means the server's default.
	MaxBodyBytes int64 `yaml:"maxBodyBytes"`
	// TaskLease is how long a task a remote worker takes stays leased to
	// it without a heartbeat; 0 means the engine's default (30s).
	TaskLease time.Duration `yaml:"taskLease"`
	// LeaseDuration is how long a task this node claims stays leased to it
	// (renewed while it runs): after a crash, the others take its work
	// once this has passed. 0 means the engine's default (5m).
	LeaseDuration time.Duration `yaml:"leaseDuration"`
	// NodeID names this node in task leases; "" makes one up.
	NodeID string `yaml:"nodeId"`
	// Log, HTTP and Trace: see config.go.
	Log   logConfig  `yaml:"log"`
	HTTP  httpConfig `yaml:"http"`
	Trace bool       `yaml:"trace"`
}

// parseTokens parses "tok1=admin,tok2=reader,tok3=operator+approver".
func parseTokens(s string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		tok, roles, ok := strings.Cut(part, "=")
		if !ok || tok == "" || roles == "" {
			return nil, fmt.Errorf("ORDO_TOKENS: %q is not TOKEN=ROLE or TOKEN=ROLE+ROLE", redact(part))
		}
		var list []string
		for _, r := range strings.Split(roles, "+") {
			list = append(list, strings.TrimSpace(r))
		}
		out[strings.TrimSpace(tok)] = list
	}
	return out, nil
}

// redact hides all but the start of a token-bearing string in messages.
func redact(s string) string {
	if len(s) <= 4 {
		return "****"
	}
	return s[:4] + "****"
}

// serverOptions turns a config into server options (without the engine).
func (c *serveConfig) serverOptions() (*server.Options, error) {
	opts := &server.Options{Addr: c.Addr, Insecure: c.Insecure, MaxBodyBytes: c.MaxBodyBytes,
		Tokens: map[string]server.Role{}, TaskRoles: map[string][]string{}}
	for tok, roles := range c.Tokens {
		role, taskRoles, err := splitTokenRoles(roles)
		if err != nil {
			return nil, fmt.Errorf("token %s: %w", redact(tok), err)
		}
		opts.Tokens[tok] = role
		if len(taskRoles) > 0 {
			opts.TaskRoles[tok] = taskRoles
		}
	}
	if c.MaxBodyBytes < 0 {
		return nil, errors.New("maxBodyBytes must not be negative")
	}
	if c.TaskLease < 0 {
		return nil, errors.New("taskLease must not be negative")
	}
	host, _, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return nil, fmt.Errorf("--addr %q must be HOST:PORT: %w", c.Addr, err)
	}
	if len(opts.Tokens) == 0 && !c.Insecure && !server.IsLoopback(host) {
		return nil, fmt.Errorf("refusing to serve %s without authentication: give tokens (config file tokens: {TOKEN: role}, or ORDO_TOKENS=TOKEN=role), listen on a loopback address, or pass --insecure", c.Addr)
	}
	return opts, nil
}

// splitTokenRoles splits a token's roles into its API role (exactly one
// of reader, operator, admin) and the roles of human tasks it may
// complete (any other names).
func splitTokenRoles(roles []string) (server.Role, []string, error) {
	var (
		api  []server.Role
		task []string
	)
	for _, r := range roles {
		switch {
		case strings.TrimSpace(r) == "":
			return "", nil, errors.New("a role is empty")
		case server.Role(r).Valid():
			api = append(api, server.Role(r))
		default:
			task = append(task, r)
		}
	}
	switch {
	case len(api) == 0 && len(roles) == 1:
		return "", nil, fmt.Errorf("role %q is not reader, operator or admin", roles[0])
	case len(api) != 1:
		return "", nil, fmt.Errorf("roles %q: give exactly one of reader, operator or admin (then any roles of human tasks)", roles)
	}
	return api[0], task, nil
}

// storeSpec returns the store the config runs on.
func (c *serveConfig) storeSpec() storeSpec {
	return storeSpec{DB: c.DB, Schema: c.Schema, Migrate: c.Migrate == nil || *c.Migrate}
}

func newServe() *cobra.Command {
	var (
		flags       serveConfig
		migrate     bool
		configPath  string
		checkConfig bool
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Ordo server: the engine and its HTTP API",
		Long: `Run the engine on an SQLite file or a PostgreSQL database with the HTTP
API (see docs/api.md).

Several servers can share one PostgreSQL database and schema, each running
some of the roles (--roles, default all): api serves the HTTP API, executor
runs steps, effects performs side effects, timers fires timers. A node
without api serves only /healthz and /readyz. See docs/operations.md.

Configuration comes from flags, then environment variables (ORDO_DB,
ORDO_SCHEMA, ORDO_ROLES, ORDO_ADDR, ORDO_TOKENS="tok1=admin,tok2=reader",
ORDO_LOG_LEVEL, ...), then the --config YAML file (db, schema, migrate,
roles, addr, insecure, maxBodyBytes, tokens: {TOKEN: role or [role, ...]}, log, http,
trace), then defaults; a flag wins over the environment, which wins over the
file. Tokens from the file and the environment are merged. Unknown keys in
the file are errors. docs/configuration.md lists every setting.

http steps and http side effects may not call loopback, private or
link-local addresses unless http.allowPrivate is set or the host is named
in http.allowHosts. GET /metrics serves Prometheus metrics; tracing with
OpenTelemetry is on when OTEL_EXPORTER_OTLP_ENDPOINT is set or with --trace.

Token roles: reader (read), operator (also start, resubmit, cancel), admin (also
deploy). A token may also carry roles of human tasks (tokens: {TOKEN:
[operator, approver]}, or ORDO_TOKENS=TOKEN=operator+approver): a human task
whose step names a role is completed only with a token that carries it.
Without tokens the server only starts on a loopback address, unless
--insecure.

SIGTERM or SIGINT stops it gracefully: requests in progress finish, then the
engine finishes or hands back its work.`,
		Example: "  ordo server --db /var/lib/ordo/ordo.db --addr 0.0.0.0:7070 --config /etc/ordo.yaml\n  ORDO_TOKENS=s3cret=admin ordo server --db ordo.db --addr :7070\n  ordo server --db 'postgres://ordo@db/ordo' --schema ordo --roles executor,effects --addr :7071",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadServeConfig(cmd.Flags(), configPath, os.Environ())
			if err != nil {
				return &usageError{err}
			}
			if err := cfg.checkObservability(); err != nil {
				return &usageError{err}
			}
			spec := cfg.storeSpec()
			if err := spec.check(); err != nil {
				return &usageError{err}
			}
			roles, err := ordo.ParseRoles(cfg.Roles)
			if err != nil {
				return &usageError{fmt.Errorf("--roles: %w", err)}
			}
			if !isPostgres(spec.DB) && len(roles) < len(allRoles) {
				return &usageError{fmt.Errorf("--roles %s leaves work to other nodes, but an SQLite file is used by one process only: run every role, or use PostgreSQL", strings.Join(roles, ","))}
			}
			opts, err := cfg.serverOptions()
			if err != nil {
				return &usageError{err}
			}
			if checkConfig {
				fmt.Fprintf(cmd.OutOrStdout(), "config ok: db %s, roles %s, addr %s, %s; %s\n", spec.describe(), strings.Join(roles, ","), cfg.Addr, authSummary(opts), cfg.extras().summary())
				return nil
			}
			return runServer(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), "Ordo server", spec, roles, opts, nil, cfg.extras())
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.DB, "db", "", "SQLite file to run on (created if missing) or a postgres:// URL (env ORDO_DB)")
	f.StringVar(&flags.Schema, "schema", "", "PostgreSQL schema holding Ordo's tables (default public; env ORDO_SCHEMA)")
	f.BoolVar(&migrate, "migrate", true, "apply the store's migrations at start (with false, run ordo migrate first)")
	f.StringVar(&flags.Roles, "roles", "", "roles this node runs, comma-separated: api,executor,effects,timers (default all; env ORDO_ROLES)")
	f.StringVar(&flags.Addr, "addr", server.DefaultAddr, "HOST:PORT to listen on; port 0 picks a free one (env ORDO_ADDR)")
	f.BoolVar(&flags.Insecure, "insecure", false, "allow serving without tokens on an address that is not loopback")
	f.Int64Var(&flags.MaxBodyBytes, "max-body-bytes", 0, "request body limit in bytes (default 1 MiB)")
	f.DurationVar(&flags.TaskLease, "task-lease", 0, "how long a task a remote worker takes stays leased without a heartbeat (default 30s; env ORDO_TASK_LEASE)")
	f.DurationVar(&flags.LeaseDuration, "lease", 0, "how long a task this node claims stays leased to it, renewed while it runs; after a crash others take it once this passed (default 5m; env ORDO_LEASE)")
	f.StringVar(&flags.NodeID, "node-id", "", "name of this node in task leases (default host-pid-random; env ORDO_NODE_ID)")
	addObservabilityFlags(f)
	f.StringVar(&configPath, "config", "", "YAML config file (see docs/configuration.md)")
	f.BoolVar(&checkConfig, "check-config", false, "check the configuration and exit")
	return cmd
}

func newDev() *cobra.Command {
	var (
		db, addr, schema string
		migrate, demo    bool
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run an all-in-one server for a laptop: SQLite file, open API on loopback, example deployed",
		Long: `Run the engine and the HTTP API on a local SQLite file, open (no tokens)
and only on a loopback address, with the order-fulfilment example workflow
deployed. For anything else, use ordo server.

With --demo, it also deploys order-remote (the order flow with every step
on a worker queue), runs simulated payment, inventory, shipping and
notification workers in-process on the worker API, and starts an order
every second, so orders flow as soon as it starts.`,
		Example: "  ordo dev\n  ordo dev --demo\n  ordo dev --db /tmp/try.db --addr 127.0.0.1:8080",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec := storeSpec{DB: db, Schema: schema, Migrate: migrate}
			if err := spec.check(); err != nil {
				return &usageError{err}
			}
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return &usageError{fmt.Errorf("--addr %q must be HOST:PORT: %w", addr, err)}
			}
			if !server.IsLoopback(host) {
				return &usageError{fmt.Errorf("ordo dev runs without authentication, so it only listens on a loopback address (127.0.0.1, ::1, localhost), not %q: use ordo server", host)}
			}
			setup := devSetup
			if demo {
				setup = demoSetup
			}
			return runServer(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), "Ordo dev server", spec, nil, &server.Options{Addr: addr}, setup, devExtras())
		},
	}
	f := cmd.Flags()
	f.StringVar(&db, "db", "ordo.db", "SQLite file to run on (created if missing) or a postgres:// URL")
	f.StringVar(&schema, "schema", "", "PostgreSQL schema holding Ordo's tables (default public)")
	f.BoolVar(&migrate, "migrate", true, "apply the store's migrations at start")
	f.StringVar(&addr, "addr", server.DefaultAddr, "loopback HOST:PORT to listen on")
	f.BoolVar(&demo, "demo", false, "run simulated workers and start a demo order every second")
	return cmd
}

// devSetup deploys the example workflow and returns what to try.
func devSetup(ctx context.Context, eng *ordo.Engine, out io.Writer, base string) (string, error) {
	def, err := ordo.ParseDefinition(devWorkflow, "order-fulfilment.yaml")
	if err != nil {
		return "", fmt.Errorf("the example workflow: %w", err)
	}
	v, err := eng.Deploy(ctx, def)
	if err != nil {
		return "", fmt.Errorf("deploying the example workflow: %w", err)
	}
	fmt.Fprintf(out, "  deployed  %s v%d (its steps name Go handlers: instances wait at payment until a worker polls that queue; ordo dev --demo runs workers)\n", def.Name(), v)
	return fmt.Sprintf(`
Try:
  ordo definitions
  ordo start %s --input '{"orderId":"o-1","customerId":"c-1","amount":42}'
  ordo list
  curl %s/api/v1/instances

Stop with Ctrl-C.
`, def.Name(), base), nil
}

// runServer opens the engine on db, serves the API with opts until ctx is
// done, then stops the server and closes the engine. setup, when not nil,
// runs once the server listens and returns hints to print. The line
// "listening on URL" comes once everything is ready.
func runServer(ctx context.Context, stdout, stderr io.Writer, title string, spec storeSpec, roles []string, opts *server.Options, setup func(context.Context, *ordo.Engine, io.Writer, string) (string, error), extras *runExtras) error {
	obs, err := extras.start(ctx, stderr)
	if err != nil {
		return err
	}
	defer obs.close(ctx, stderr)
	logger := obs.logger
	ecfg := obs.engineConfig()
	ecfg.Roles = roles
	eng, err := ordo.Open(ctx, spec.opener(logger), ecfg)
	if err != nil {
		return err
	}
	closeEngine := func() error {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
		defer cancel()
		return eng.Close(cctx)
	}
	o := *opts
	o.Engine, o.Logger = eng, logger
	api := len(roles) == 0 || slices.Contains(roles, ordo.RoleAPI)
	o.HealthOnly = !api
	obs.serverOptions(&o)
	srv, err := server.New(&o)
	if err != nil {
		return errors.Join(err, closeEngine())
	}
	if err := srv.Start(ctx); err != nil {
		return errors.Join(err, closeEngine())
	}
	base := "http://" + srv.Addr()
	fmt.Fprintf(stdout, "%s (version %s)\n", title, version())
	if api {
		fmt.Fprintf(stdout, "  API       %s/api/v1 (OpenAPI: %s/api/v1/openapi.json)\n", base, base)
	} else {
		fmt.Fprintf(stdout, "  API       not served (no api role); health at %s/healthz and %s/readyz\n", base, base)
	}
	fmt.Fprintf(stdout, "  database  %s\n", spec.describe())
	if len(roles) > 0 {
		fmt.Fprintf(stdout, "  roles     %s\n", strings.Join(roles, ","))
	}
	fmt.Fprintf(stdout, "  auth      %s\n", authSummary(&o))
	obs.describe(stdout, base)
	var (
		hints    string
		setupErr error
	)
	if setup != nil {
		hints, setupErr = setup(ctx, eng, stdout, base)
	}
	if setupErr == nil {
		fmt.Fprintf(stdout, "listening on %s\n", base)
		fmt.Fprint(stdout, hints)
		<-ctx.Done()
		fmt.Fprintln(stdout, "stopping: finishing requests in progress, then handing back the engine's work")
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err = srv.Stop(sctx)
	err = errors.Join(setupErr, err, closeEngine())
	if err == nil {
		fmt.Fprintln(stdout, "stopped")
	}
	return err
}

// authSummary says how requests are authenticated, without the tokens.
func authSummary(o *server.Options) string {
	if len(o.Tokens) == 0 {
		return "off: no tokens, open to anyone who can reach the address"
	}
	counts := map[server.Role]int{}
	for _, r := range o.Tokens {
		counts[r]++
	}
	var parts []string
	for _, r := range []server.Role{server.RoleAdmin, server.RoleOperator, server.RoleReader} {
		if counts[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[r], r))
		}
	}
	summary := strings.Join(parts, ", ")
	if n := len(o.TaskRoles); n > 0 {
		summary += fmt.Sprintf("; %d with roles of human tasks", n)
	}
	return "bearer tokens (" + summary + ")"
}
