// Package ordosqlite is Ordo's embedded store: an [ordostore.Store] on one
// SQLite file, through the pure-Go modernc.org/sqlite driver (no cgo).
//
// # Durability
//
// The file is in WAL mode with synchronous=FULL: when [Store.Apply] returns,
// its transaction is in the write-ahead log and the log has been fsynced, so
// it survives a crash of the process or of the machine. Every transition of
// a batch shares that one commit (group commit).
//
// # Connections
//
// A Store has one writer connection, which runs every write transaction
// (BEGIN IMMEDIATE), and a pool of read-only connections for reads, which
// never wait for the writer in WAL mode.
//
// # One process per file
//
// Open takes an exclusive lock on "<path>.lock" and holds it until Close, so
// a second Open of the same file, in this process or another, fails at once.
// That is why [Store.Exclusive] reports true.
//
// The schema is described in docs/storage.md. Its migrations are embedded and
// applied by Open.
package ordosqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

// Config is the configuration of a [Store]. The zero value, like a nil
// *Config, gives the defaults.
type Config struct {
	// ReadConns is the number of connections in the read pool, and so the
	// number of reads that run at the same time. Defaults to 4.
	ReadConns int

	// BusyTimeout is how long a connection waits for a lock held by another
	// connection (a checkpoint, say) before failing with SQLITE_BUSY.
	// Defaults to 5 seconds.
	BusyTimeout time.Duration

	// Logger receives the store's log lines: applied migrations (info) and
	// failures to clean up (warn). Defaults to warnings and errors on stdout.
	Logger *slog.Logger
}

// Defaults of [Config].
const (
	defaultReadConns   = 4
	defaultBusyTimeout = 5 * time.Second
)

func (c *Config) validate() error {
	if c.ReadConns < 0 {
		return fmt.Errorf("%w: Config.ReadConns must not be negative, got %d", ordotype.ErrInvalid, c.ReadConns)
	}
	if c.BusyTimeout < 0 {
		return fmt.Errorf("%w: Config.BusyTimeout must not be negative, got %s", ordotype.ErrInvalid, c.BusyTimeout)
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
	if out.ReadConns == 0 {
		out.ReadConns = defaultReadConns
	}
	if out.BusyTimeout == 0 {
		out.BusyTimeout = defaultBusyTimeout
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return &out
}

// Store is an [ordostore.Store] on one SQLite file. Create it with [Open].
type Store struct {
	path   string
	logger *slog.Logger
	lock   *os.File

	writer   *sql.DB // exactly one connection: every write goes through it
	reader   *sql.DB // query_only connections
	ckpt     *sql.DB // one connection for background checkpoints (checkpoint.go)
	ckptStop chan struct{}
	ckptDone chan struct{}
	wstmts   *stmtCache
	rstmts   *stmtCache
	closeMu  sync.RWMutex // held for reading by every operation, for writing by Close
	closed   bool

	// The schema versions before and after the migrations of Open.
	versionFrom, versionTo int64
}

var _ ordostore.Store = (*Store)(nil)

// Open opens (creating it if needed) the database file at path, locks it
// for this process and brings its schema up to date. A nil cfg gives the
// defaults of [Config].
//
// Open fails if the file is already open, by this process or another, or if
// the file's schema is newer than this version of Ordo knows.
func Open(ctx context.Context, path string, cfg *Config) (*Store, error) {
	if cfg != nil {
		if err := cfg.validate(); err != nil {
			return nil, err
		}
	}
	cfg = cfg.withDefaults()

	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}
	lock, err := lockFile(abs + ".lock")
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}
	s := &Store{path: abs, logger: cfg.Logger, lock: lock}
	if err := s.open(ctx, cfg); err != nil {
		if cerr := s.closeAll(); cerr != nil {
			s.logger.WarnContext(ctx, "failed to clean up after a failed open", slog.String("path", abs), slog.Any("error", cerr))
		}
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}
	return s, nil
}

// open opens the writer, migrates the schema, then opens the read pool.
func (s *Store) open(ctx context.Context, cfg *Config) error {
	var err error
	if s.writer, err = sql.Open("sqlite", dsn(s.path, cfg.BusyTimeout, false)); err != nil {
		return err
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxLifetime(0)
	s.writer.SetConnMaxIdleTime(0)
	s.wstmts = newStmtCache(s.writer)
	if err := s.writer.PingContext(ctx); err != nil {
		return err
	}
	if s.versionFrom, s.versionTo, err = migrate(ctx, s.writer, s.logger); err != nil {
		return err
	}
	if err := s.wstmts.prepareAll(ctx, writerQueries); err != nil {
		return err
	}
	if _, err := s.writer.ExecContext(ctx, fmt.Sprintf("PRAGMA wal_autocheckpoint = %d", autoCheckpointPages)); err != nil {
		return err
	}
	if s.ckpt, err = sql.Open("sqlite", dsn(s.path, cfg.BusyTimeout, false)); err != nil {
		return err
	}
	s.ckpt.SetMaxOpenConns(1)
	s.ckpt.SetMaxIdleConns(1)
	s.ckpt.SetConnMaxLifetime(0)
	s.ckpt.SetConnMaxIdleTime(0)
	if err := s.ckpt.PingContext(ctx); err != nil {
		return err
	}
	s.startCheckpointer(s.ckpt)

	if s.reader, err = sql.Open("sqlite", dsn(s.path, cfg.BusyTimeout, true)); err != nil {
		return err
	}
	s.reader.SetMaxOpenConns(cfg.ReadConns)
	s.reader.SetMaxIdleConns(cfg.ReadConns)
	s.reader.SetConnMaxLifetime(0)
	s.reader.SetConnMaxIdleTime(0)
	s.rstmts = newStmtCache(s.reader)
	return s.reader.PingContext(ctx)
}

// dsn returns the data source name of path for modernc.org/sqlite. Pragmas
// are set through the DSN so that every connection of a pool gets them.
func dsn(path string, busyTimeout time.Duration, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	// FULL on readers too: the last connection to close checkpoints the WAL.
	q.Add("_pragma", "synchronous(FULL)")
	// Savepoint journals and sorts in memory, not in temporary files: every
	// transition of Apply runs in a savepoint.
	q.Add("_pragma", "temp_store(MEMORY)")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: q.Encode()}
	return u.String()
}

// DatabaseName returns "sqlite".
func (s *Store) DatabaseName() string { return "sqlite" }

// Exclusive returns true: the file is locked by the process that opened it.
func (s *Store) Exclusive() bool { return true }

// Close waits for the operations in progress, closes the connections and
// releases the file's lock. It is safe to call twice; every other method
// returns an error wrapping [ordotype.ErrClosed] after it.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.closeAll()
}

// closeAll closes whatever Open managed to open: readers first, so that the
// writer, closing last, is the connection that checkpoints the WAL.
func (s *Store) closeAll() error {
	var errs []error
	s.stopCheckpointer()
	if s.ckpt != nil {
		errs = append(errs, s.ckpt.Close())
	}
	if s.rstmts != nil {
		errs = append(errs, s.rstmts.close())
	}
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
	}
	if s.wstmts != nil {
		errs = append(errs, s.wstmts.close())
	}
	if s.writer != nil {
		errs = append(errs, s.writer.Close())
	}
	// Closing the file releases the lock.
	errs = append(errs, s.lock.Close())
	return errors.Join(errs...)
}

// enter starts an operation: it fails if the store is closed, and otherwise
// keeps Close waiting until the matching leave.
func (s *Store) enter() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return fmt.Errorf("sqlite store %s: %w", s.path, ordotype.ErrClosed)
	}
	return nil
}

// leave ends an operation started by enter.
func (s *Store) leave() { s.closeMu.RUnlock() }

// inWriteTx runs fn in a write transaction (BEGIN IMMEDIATE) on the
// writer, and commits it if fn returns nil.
//
// ctx bounds the wait for the writer and the statements fn runs, but not the
// commit: the transaction itself runs under a context that is never
// cancelled, so a commit that has started runs to the end, and an error
// caused by ctx always means that nothing was written.
func (s *Store) inWriteTx(ctx context.Context, fn func(stmts *txStmts) error) error {
	return s.inTx(ctx, false, fn)
}

// inLeaseTx is inWriteTx for a change of leases only (ClaimTasks):
// its commit is not synced to disk by itself (synchronous=NORMAL for this
// transaction), which saves an fsync per claim. Nothing is lost by that:
// the WAL is written in order, so the next synced commit (Apply, which
// journals every outcome) makes it durable too, and a lease a crash does
// undo means nothing, because the file is locked to one process and every
// lease is handed back when it is opened again (the engine's
// ReleaseLeases). A claim counter that a crash undoes cannot let a late
// completion through either: a claim is only acted on through a synced
// journal commit.
func (s *Store) inLeaseTx(ctx context.Context, fn func(stmts *txStmts) error) error {
	return s.inTx(ctx, true, fn)
}

// inTx runs fn in a transaction on the writer and commits it if fn returns
// nil; relaxed commits it with synchronous=NORMAL (see inLeaseTx).
func (s *Store) inTx(ctx context.Context, relaxed bool, fn func(stmts *txStmts) error) error {
	conn, err := s.writer.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }() // returns the connection to the pool
	if relaxed {
		if _, err := conn.ExecContext(ctx, "PRAGMA synchronous = NORMAL"); err != nil {
			return err
		}
		defer func() {
			// Back to FULL before anything else uses the connection; if
			// that fails, the connection is thrown away (a new one gets
			// FULL from its DSN).
			if _, err := conn.ExecContext(context.WithoutCancel(ctx), "PRAGMA synchronous = FULL"); err != nil {
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
	}
	tx, err := conn.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return err
	}
	if err := fn(newTxStmts(tx, s.wstmts)); err != nil {
		s.rollback(ctx, tx)
		return err
	}
	if err := ctx.Err(); err != nil {
		s.rollback(ctx, tx)
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// rollback rolls tx back, logging a failure: it runs on a path that already
// returns an error.
func (s *Store) rollback(ctx context.Context, tx *sql.Tx) {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		s.logger.WarnContext(ctx, "failed to roll back", slog.String("path", s.path), slog.Any("error", err))
	}
}

// interpretError translates database errors into the sentinels of package
// ordotype, keeping the original error in the chain: no rows becomes
// ErrNotFound, a primary key or unique violation ErrConflict, and any other
// constraint violation (foreign key, not null, check) ErrInvalid.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: %w", ordotype.ErrNotFound, err)
	}
	var serr *sqlite.Error
	if !errors.As(err, &serr) || serr.Code()&0xff != sqlite3.SQLITE_CONSTRAINT {
		return err
	}
	switch serr.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return fmt.Errorf("%w: %w", ordotype.ErrConflict, err)
	default:
		return fmt.Errorf("%w: %w", ordotype.ErrInvalid, err)
	}
}

// toNanos returns t as Unix nanoseconds, and the zero time as 0.
func toNanos(t time.Time) int64 { return ordostore.UnixNanos(t) }

// fromNanos is the inverse of toNanos: the time in UTC, or the zero time for 0.
func fromNanos(n int64) time.Time { return ordostore.FromUnixNanos(n) }

// nullNanos is toNanos for a nullable column: the zero time is NULL.
func nullNanos(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return toNanos(t)
}

// nullString returns nil (NULL) for "", else s.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// isNoRows reports whether err is sql.ErrNoRows.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// writerQueries are the statements the writer runs, prepared at Open.
var writerQueries = append([]string{
	sqlLatestDefinition, sqlInsertDefinition,
	sqlClaimCandidatesQueue, sqlClaimCandidatesKind, sqlClaimCandidatesMany, sqlClaimCandidatesManyKinds, sqlClaim,
	sqlReleaseAllLeases, sqlReleaseOwnerLeases, sqlExtendLeases,
	sqlInsertMessage, sqlLastRowID, sqlExpiredMessages, sqlDeleteMessages, sqlMessageConsumer, sqlConsumeMessage,
	sqlSlotHeld, sqlSlotCount, sqlInsertSlot, sqlReleaseSlot,
}, applyQueries()...)
