// Package ordopostgres is Ordo's store for production and for several
// nodes: an [ordostore.Store] on PostgreSQL, through jackc/pgx v5 and its
// pgxpool.
//
// # Several nodes, one database
//
// Any number of engine processes may open the same database and schema at
// once: [Store.Apply] locks the rows it changes, and [Store.ClaimTasks]
// leases tasks with FOR UPDATE SKIP LOCKED, so nodes share the work without
// waiting for each other, and a dead node's leases run out and its tasks are
// claimed by the others. That is why [Store.Exclusive] reports false.
//
// # Durability
//
// [Store.Apply] writes a whole batch in one transaction and returns once its
// commit is durable: the store never turns synchronous_commit off, and turns
// it back on for its own connections if the server's default is off.
//
// # Schema
//
// Every table lives in one PostgreSQL schema, [Config.Schema] ("public" by
// default), so several stores (or tests) can share a database. Its
// migrations are embedded and applied by [Open], or by [Migrate]; they are
// described, with every table and index, in docs/storage.md.
package ordopostgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// Config is the configuration of a [Store]. The zero value, like a nil
// *Config, gives the defaults.
type Config struct {
	// MaxConns is the most connections the store opens to the server, and
	// so the number of operations that run at the same time; the others
	// wait for a free connection. Connections are opened on demand. Defaults
	// to 16.
	MaxConns int

	// Schema is the PostgreSQL schema that holds every table of the store.
	// It is created, if missing, by the migrations. Defaults to "public".
	Schema string

	// Logger receives the store's log lines: the schema's creation and
	// applied migrations (info), batches retried after a deadlock (info)
	// and failures to clean up (warn). Defaults to warnings and errors on
	// stdout.
	Logger *slog.Logger

	// DisableMigrate stops [Open] from applying migrations: Open then fails
	// unless the schema is already at the latest version, applied by
	// [Migrate] (the `ordo migrate` command). Defaults to false: Open
	// migrates.
	DisableMigrate bool
}

// Defaults of [Config].
const (
	defaultMaxConns = 16
	defaultSchema   = "public"
)

func (c *Config) validate() error {
	if c.MaxConns < 0 {
		return fmt.Errorf("%w: Config.MaxConns must not be negative, got %d", ordotype.ErrInvalid, c.MaxConns)
	}
	return nil
}

// withDefaults returns a copy of c (which may be nil) with every unset field
// given its default.
func (c *Config) withDefaults() *Config {
	out := Config{}
	if c != nil {
		out = *c
	}
	if out.MaxConns == 0 {
		out.MaxConns = defaultMaxConns
	}
	if out.Schema == "" {
		out.Schema = defaultSchema
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return &out
}

// Store is an [ordostore.Store] on a PostgreSQL schema. Create it with
// [Open].
type Store struct {
	schema string
	logger *slog.Logger
	pool   *pgxpool.Pool

	closeMu sync.RWMutex // held for reading by every operation, for writing by Close
	closed  bool

	// The wake-ups of notify.go.
	channel      string
	wake         chan struct{}
	listenOnce   sync.Once
	listenCancel context.CancelFunc
	listenDone   chan struct{}
}

var _ ordostore.Store = (*Store)(nil)

// Open connects to the PostgreSQL server at url (a URL or a keyword/value
// connection string, as pgx accepts) and brings the schema of cfg up to
// date. A nil cfg gives the defaults of [Config].
//
// Open fails if the server cannot be reached, if the schema is newer than
// this version of Ordo knows, or, with [Config.DisableMigrate], if the
// schema is not at the latest version.
func Open(ctx context.Context, url string, cfg *Config) (*Store, error) {
	if cfg != nil {
		if err := cfg.validate(); err != nil {
			return nil, err
		}
	}
	cfg = cfg.withDefaults()

	pool, err := newPool(ctx, url, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store (schema %s): %w", cfg.Schema, err)
	}
	if cfg.DisableMigrate {
		err = checkVersion(ctx, pool)
	} else {
		_, _, err = migrate(ctx, pool, cfg.Schema, cfg.Logger)
	}
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store (schema %s): %w", cfg.Schema, err)
	}
	return &Store{schema: cfg.Schema, logger: cfg.Logger, pool: pool,
		channel: channelName(cfg.Schema), wake: make(chan struct{}, 1)}, nil
}

// newPool returns a pool of connections to url whose search_path is the
// schema of cfg, after checking that the server can be reached.
func newPool(ctx context.Context, url string, cfg *Config) (*pgxpool.Pool, error) {
	pcfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ordotype.ErrInvalid, err)
	}
	// pool_max_conns in the URL wins over Config.MaxConns.
	if _, set := pcfg.ConnConfig.Config.RuntimeParams["pool_max_conns"]; !set && !strings.Contains(url, "pool_max_conns") {
		pcfg.MaxConns = int32(cfg.MaxConns)
	}
	// Sent in the startup message: every connection, opened now or later,
	// resolves the store's tables in its schema, at no extra round trip.
	pcfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{cfg.Schema}.Sanitize()
	if pcfg.ConnConfig.RuntimeParams["application_name"] == "" {
		pcfg.ConnConfig.RuntimeParams["application_name"] = "ordo"
	}
	pcfg.AfterConnect = keepCommitsDurable
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// keepCommitsDurable turns synchronous_commit on for conn if the server,
// database or role made it off, so that a commit has reached the disk when
// it returns. Any other level (local, remote_write, on, remote_apply) is
// kept: all of them flush the commit to the server's own disk.
func keepCommitsDurable(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, `SELECT set_config('synchronous_commit', 'on', false) WHERE current_setting('synchronous_commit') = 'off'`)
	return err
}

// DatabaseName returns "postgres".
func (s *Store) DatabaseName() string { return "postgres" }

// Exclusive returns false: other processes may use the same schema at the
// same time, so a lease held by another node must run out before its task
// is claimed again.
func (s *Store) Exclusive() bool { return false }

// Close waits for the operations in progress and closes the connections. It
// is safe to call twice; every other method returns an error wrapping
// [ordotype.ErrClosed] after it.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.stopListening()
	s.pool.Close()
	return nil
}

// enter starts an operation: it fails if the store is closed, and otherwise
// keeps Close waiting until the matching leave.
func (s *Store) enter() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return fmt.Errorf("postgres store (schema %s): %w", s.schema, ordotype.ErrClosed)
	}
	return nil
}

// leave ends an operation started by enter.
func (s *Store) leave() { s.closeMu.RUnlock() }

// rollback rolls tx back, logging a failure: it runs on a path that already
// returns an error, or after a commit, when it does nothing. A failure after
// ctx ended is expected and not logged: pgx closes a connection whose
// statement ctx interrupted, which ends the transaction too.
func (s *Store) rollback(ctx context.Context, tx pgx.Tx) {
	err := tx.Rollback(context.WithoutCancel(ctx))
	if err != nil && !errors.Is(err, pgx.ErrTxClosed) && ctx.Err() == nil {
		s.logger.WarnContext(ctx, "failed to roll back", slog.String("schema", s.schema), slog.Any("error", err))
	}
}

// PostgreSQL error codes the store acts on.
const (
	codeNotNullViolation     = "23502"
	codeForeignKeyViolation  = "23503"
	codeUniqueViolation      = "23505"
	codeCheckViolation       = "23514"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeUndefinedTable       = "42P01"
	codeDivisionByZero       = "22012"
)

// interpretError translates database errors into the sentinels of package
// ordotype, keeping the original error in the chain: no rows becomes
// ErrNotFound, a second instance with the same idempotency key
// ErrAlreadyExists, any other unique violation ErrConflict, and any other
// constraint violation (foreign key, not null, check) ErrInvalid.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w: %w", ordotype.ErrNotFound, err)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch pgErr.Code {
	case codeUniqueViolation:
		if pgErr.ConstraintName == "instances_idempotency_key" {
			return fmt.Errorf("%w: %w", ordotype.ErrAlreadyExists, err)
		}
		return fmt.Errorf("%w: %w", ordotype.ErrConflict, err)
	case codeForeignKeyViolation, codeNotNullViolation, codeCheckViolation:
		return fmt.Errorf("%w: %w", ordotype.ErrInvalid, err)
	}
	return err
}

// isRetryable reports whether err aborted a transaction that can simply be
// run again: a deadlock, or a serialization failure.
func isRetryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == codeDeadlockDetected || pgErr.Code == codeSerializationFailure)
}

// toNanos returns t as Unix nanoseconds, and the zero time as 0.
func toNanos(t time.Time) int64 { return ordostore.UnixNanos(t) }

// fromNanos is the inverse of toNanos: the time in UTC, or the zero time for 0.
func fromNanos(n int64) time.Time { return ordostore.FromUnixNanos(n) }

// querier is what query runs on: the pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// query runs sql and scans every row with scan. It returns an empty,
// non-nil slice when there are no rows.
func query[T any](ctx context.Context, q querier, sql string, args []any, scan func(scan func(dest ...any) error) (T, error)) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// deref returns *p, or the zero value for nil (a NULL column).
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// argList are the arguments of a statement built at run time.
type argList []any

// add appends v to the arguments and returns its placeholder.
func (a *argList) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}
