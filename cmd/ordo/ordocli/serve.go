package ordocli

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

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
	// DB is the SQLite file.
	DB string `yaml:"db"`
	// Addr is host:port to listen on.
	Addr string `yaml:"addr"`
	// Insecure allows serving without tokens on a non-loopback address.
	Insecure bool `yaml:"insecure"`
	// Tokens maps bearer tokens to roles (reader, operator, admin).
	Tokens map[string]string `yaml:"tokens"`
	// MaxBodyBytes caps request bodies; 0 means the server's default.
	MaxBodyBytes int64 `yaml:"maxBodyBytes"`
	// TaskLease is how long a task a remote worker takes stays leased to
	// it without a heartbeat; 0 means the engine's default (30s).
	TaskLease time.Duration `yaml:"taskLease"`
}

// loadConfigFile reads a YAML config file. Unknown keys are errors.
func loadConfigFile(path string) (*serveConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	var cfg serveConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &cfg, nil
}

// parseTokens parses "tok1=admin,tok2=reader".
func parseTokens(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		tok, role, ok := strings.Cut(part, "=")
		if !ok || tok == "" || role == "" {
			return nil, fmt.Errorf("ORDO_TOKENS: %q is not TOKEN=ROLE", redact(part))
		}
		out[strings.TrimSpace(tok)] = strings.TrimSpace(role)
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
	opts := &server.Options{Addr: c.Addr, Insecure: c.Insecure, MaxBodyBytes: c.MaxBodyBytes, Tokens: map[string]server.Role{}}
	for tok, role := range c.Tokens {
		r := server.Role(role)
		if !r.Valid() {
			return nil, fmt.Errorf("token %s: role %q is not reader, operator or admin", redact(tok), role)
		}
		opts.Tokens[tok] = r
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

// checkDB refuses what `ordo server` cannot open yet.
func checkDB(db string) error {
	if db == "" {
		return errors.New("--db is required: the SQLite file to run on (created if missing)")
	}
	if strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://") {
		return errors.New("PostgreSQL is not supported yet: give --db an SQLite file path")
	}
	return nil
}

func newServe() *cobra.Command {
	var (
		flags       serveConfig
		configPath  string
		checkConfig bool
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the Ordo server: the engine and its HTTP API",
		Long: `Run the engine on an SQLite file with the HTTP API (see docs/api.md).

Configuration comes from flags, then environment variables (ORDO_DB,
ORDO_ADDR, ORDO_TOKENS="tok1=admin,tok2=reader"), then the --config YAML
file (db, addr, insecure, maxBodyBytes, taskLease, tokens: {TOKEN: role}); a flag wins
over the environment, which wins over the file. Tokens from the file and the
environment are merged.

Roles: reader (read), operator (also start, resubmit, cancel), admin (also
deploy). Without tokens the server only starts on a loopback address, unless
--insecure.

SIGTERM or SIGINT stops it gracefully: requests in progress finish, then the
engine finishes or hands back its work.`,
		Example: "  ordo server --db /var/lib/ordo/ordo.db --addr 0.0.0.0:7070 --config /etc/ordo.yaml\n  ORDO_TOKENS=s3cret=admin ordo server --db ordo.db --addr :7070",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := &serveConfig{}
			if configPath != "" {
				c, err := loadConfigFile(configPath)
				if err != nil {
					return &usageError{err}
				}
				cfg = c
			}
			if cfg.Tokens == nil {
				cfg.Tokens = map[string]string{}
			}
			if v := os.Getenv("ORDO_DB"); v != "" {
				cfg.DB = v
			}
			if v := os.Getenv("ORDO_ADDR"); v != "" {
				cfg.Addr = v
			}
			if v := os.Getenv("ORDO_TOKENS"); v != "" {
				toks, err := parseTokens(v)
				if err != nil {
					return &usageError{err}
				}
				for tok, role := range toks {
					cfg.Tokens[tok] = role
				}
			}
			f := cmd.Flags()
			if f.Changed("db") {
				cfg.DB = flags.DB
			}
			if f.Changed("addr") || cfg.Addr == "" {
				cfg.Addr = flags.Addr
			}
			if f.Changed("insecure") {
				cfg.Insecure = flags.Insecure
			}
			if f.Changed("max-body-bytes") {
				cfg.MaxBodyBytes = flags.MaxBodyBytes
			}
			if f.Changed("task-lease") {
				cfg.TaskLease = flags.TaskLease
			}
			if err := checkDB(cfg.DB); err != nil {
				return &usageError{err}
			}
			opts, err := cfg.serverOptions()
			if err != nil {
				return &usageError{err}
			}
			if checkConfig {
				fmt.Fprintf(cmd.OutOrStdout(), "config ok: db %s, addr %s, %s\n", cfg.DB, cfg.Addr, authSummary(opts))
				return nil
			}
			return runEngineServer(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), "Ordo server", cfg.DB, ordo.Config{TaskLease: cfg.TaskLease}, opts, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&flags.DB, "db", "", "SQLite file to run on, created if missing (env ORDO_DB)")
	f.StringVar(&flags.Addr, "addr", server.DefaultAddr, "HOST:PORT to listen on; port 0 picks a free one (env ORDO_ADDR)")
	f.BoolVar(&flags.Insecure, "insecure", false, "allow serving without tokens on an address that is not loopback")
	f.Int64Var(&flags.MaxBodyBytes, "max-body-bytes", 0, "request body limit in bytes (default 1 MiB)")
	f.DurationVar(&flags.TaskLease, "task-lease", 0, "how long a task a remote worker takes stays leased without a heartbeat (default 30s)")
	f.StringVar(&configPath, "config", "", "YAML config file")
	f.BoolVar(&checkConfig, "check-config", false, "check the configuration and exit")
	return cmd
}

func newDev() *cobra.Command {
	var db, addr string
	var demo bool
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
			if err := checkDB(db); err != nil {
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
			return runServer(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), "Ordo dev server", db, &server.Options{Addr: addr}, setup)
		},
	}
	f := cmd.Flags()
	f.StringVar(&db, "db", "ordo.db", "SQLite file to run on, created if missing")
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
	fmt.Fprintf(out, "  deployed  %s v%d (its steps are Go handlers: instances wait, as server mode has no workers yet)\n", def.Name(), v)
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
func runServer(ctx context.Context, stdout, stderr io.Writer, title, db string, opts *server.Options, setup func(context.Context, *ordo.Engine, io.Writer, string) (string, error)) error {
	return runEngineServer(ctx, stdout, stderr, title, db, ordo.Config{}, opts, setup)
}

// runEngineServer is runServer with an engine configuration (its Logger is
// set here).
func runEngineServer(ctx context.Context, stdout, stderr io.Writer, title, db string, ecfg ordo.Config, opts *server.Options, setup func(context.Context, *ordo.Engine, io.Writer, string) (string, error)) error {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ecfg.Logger = logger
	eng, err := ordo.Open(ctx, ordo.SQLite(db), &ecfg)
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
	srv, err := server.New(&o)
	if err != nil {
		return errors.Join(err, closeEngine())
	}
	if err := srv.Start(ctx); err != nil {
		return errors.Join(err, closeEngine())
	}
	base := "http://" + srv.Addr()
	abs, _ := filepath.Abs(db)
	fmt.Fprintf(stdout, "%s (version %s)\n", title, version())
	fmt.Fprintf(stdout, "  API       %s/api/v1 (OpenAPI: %s/api/v1/openapi.json)\n", base, base)
	fmt.Fprintf(stdout, "  database  %s (SQLite)\n", abs)
	fmt.Fprintf(stdout, "  auth      %s\n", authSummary(&o))
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
	return "bearer tokens (" + strings.Join(parts, ", ") + ")"
}
