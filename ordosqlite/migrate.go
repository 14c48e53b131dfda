package ordosqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
)

// migrations are the versioned schema changes, applied in order by Open.
//
//go:embed migration/*.sql
var migrations embed.FS

// migrate brings db's schema up to the latest embedded migration. It is a
// no-op on a database that is up to date, and fails on one whose schema is
// newer than the migrations this build embeds.
func migrate(ctx context.Context, db *sql.DB, logger *slog.Logger) (from, to int64, err error) {
	fsys, err := fs.Sub(migrations, "migration")
	if err != nil {
		return 0, 0, err
	}
	provider, err := goose.NewProvider(goose.DialectSQLite3, db, fsys,
		goose.WithDisableGlobalRegistry(true),
		goose.WithSlog(logger),
	)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	current, latest, err := provider.GetVersions(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	if current > latest {
		return 0, 0, fmt.Errorf("migrate: the schema is at version %d but this build of Ordo knows versions up to %d: open it with a newer build", current, latest)
	}
	if _, err := provider.Up(ctx); err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	return current, latest, nil
}
