package ordopostgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
)

// migrations are the versioned schema changes, applied in order.
//
//go:embed migration/*.sql
var migrations embed.FS

// versionTable is the table where goose records the applied migrations, in
// the store's schema.
const versionTable = "goose_db_version"

// Migrate brings the schema of cfg, in the database at url, up to the
// latest migration this build embeds, creating the schema if it is missing.
// It is what [Open] does unless [Config.DisableMigrate] is set, for a
// command such as `ordo migrate`. A nil cfg gives the defaults of [Config];
// only Schema and Logger matter.
//
// Several processes may migrate the same schema at once: each waits for a
// session-level advisory lock, and the first applies the migrations while
// the others find nothing left to do. Migrate fails if the schema is newer
// than this build knows.
func Migrate(ctx context.Context, url string, cfg *Config) error {
	if cfg != nil {
		if err := cfg.validate(); err != nil {
			return err
		}
	}
	cfg = cfg.withDefaults()
	pool, err := newPool(ctx, url, &Config{MaxConns: 1, Schema: cfg.Schema})
	if err != nil {
		return fmt.Errorf("migrate postgres schema %s: %w", cfg.Schema, err)
	}
	defer pool.Close()
	if _, _, err := migrate(ctx, pool, cfg.Schema, cfg.Logger); err != nil {
		return fmt.Errorf("migrate postgres schema %s: %w", cfg.Schema, err)
	}
	return nil
}

// migrate creates schema if it is missing and applies the pending
// migrations to it, through pool (whose search_path is schema), holding the
// schema's advisory lock on a connection of its own.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string, logger *slog.Logger) (from, to int64, err error) {
	// The lock is held on a connection outside the pool, so that goose can
	// use the pool's connections even when the pool has only one.
	conn, err := pgx.ConnectConfig(ctx, pool.Config().ConnConfig.Copy())
	if err != nil {
		return 0, 0, fmt.Errorf("migrate: connect: %w", err)
	}
	defer func() {
		// Closing the session releases its advisory lock too.
		err = errors.Join(err, conn.Close(context.WithoutCancel(ctx)))
	}()
	key := migrationLockKey(schema)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return 0, 0, fmt.Errorf("migrate: take the migration lock: %w", err)
	}
	defer func() {
		if _, uerr := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key); uerr != nil {
			err = errors.Join(err, fmt.Errorf("migrate: release the migration lock: %w", uerr))
		}
	}()

	// CREATE SCHEMA IF NOT EXISTS needs the CREATE privilege on the
	// database even when the schema exists, so it runs only when needed;
	// the lock keeps two processes from creating it at once.
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
			return 0, 0, fmt.Errorf("migrate: create schema: %w", err)
		}
		logger.InfoContext(ctx, "created schema", slog.String("schema", schema))
	}

	db := stdlib.OpenDBFromPool(pool)
	defer func() { err = errors.Join(err, db.Close()) }()
	provider, err := newProvider(db, logger)
	if err != nil {
		return 0, 0, err
	}
	current, latest, err := provider.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	if current > latest {
		return 0, 0, newerSchemaError(current, latest)
	}
	if _, err := provider.Up(ctx); err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	return current, latest, nil
}

// newProvider returns a goose provider of the embedded migrations on db.
// It uses no goose lock: migrate holds its own.
func newProvider(db *sql.DB, logger *slog.Logger) (*goose.Provider, error) {
	fsys, err := fs.Sub(migrations, "migration")
	if err != nil {
		return nil, err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(logger),
	)
	if err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return provider, nil
}

// checkVersion fails unless the schema of pool is at the latest embedded
// migration. It writes nothing.
func checkVersion(ctx context.Context, pool *pgxpool.Pool) error {
	latest, err := latestVersion()
	if err != nil {
		return err
	}
	var current *int64
	err = pool.QueryRow(ctx, `SELECT max(version_id) FROM `+versionTable).Scan(&current)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == codeUndefinedTable:
		return fmt.Errorf("the schema has no Ordo tables and migrations are disabled: run the migrations first (ordopostgres.Migrate)")
	case err != nil:
		return fmt.Errorf("read the schema version: %w", err)
	case current == nil || *current < latest:
		v := int64(0)
		if current != nil {
			v = *current
		}
		return fmt.Errorf("the schema is at version %d, this build of Ordo needs version %d and migrations are disabled: run the migrations first (ordopostgres.Migrate)", v, latest)
	case *current > latest:
		return newerSchemaError(*current, latest)
	}
	return nil
}

// latestVersion returns the version of the last embedded migration.
func latestVersion() (int64, error) {
	fsys, err := fs.Sub(migrations, "migration")
	if err != nil {
		return 0, err
	}
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, name := range names {
		v, err := goose.NumericComponent(name)
		if err != nil {
			return 0, fmt.Errorf("migration %s: %w", name, err)
		}
		latest = max(latest, v)
	}
	return latest, nil
}

func newerSchemaError(current, latest int64) error {
	return fmt.Errorf("the schema is at version %d but this build of Ordo knows versions up to %d: use a newer build", current, latest)
}

// migrationLockKey returns the key of schema's advisory lock: a hash of its
// name, so that the migrations of different schemas do not wait for each
// other.
func migrationLockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("ordopostgres migrate " + schema))
	return int64(h.Sum64())
}
