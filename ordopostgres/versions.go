package ordopostgres

import (
	"context"
	"fmt"
)

// MigrateVersions is [Migrate], and also returns the schema's migration
// version before (0 for a new schema) and after: what `ordo migrate`
// prints.
func MigrateVersions(ctx context.Context, url string, cfg *Config) (from, to int64, err error) {
	if cfg != nil {
		if err := cfg.validate(); err != nil {
			return 0, 0, err
		}
	}
	cfg = cfg.withDefaults()
	pool, err := newPool(ctx, url, &Config{MaxConns: 1, Schema: cfg.Schema})
	if err != nil {
		return 0, 0, fmt.Errorf("migrate postgres schema %s: %w", cfg.Schema, err)
	}
	defer pool.Close()
	from, to, err = migrate(ctx, pool, cfg.Schema, cfg.Logger)
	if err != nil {
		return 0, 0, fmt.Errorf("migrate postgres schema %s: %w", cfg.Schema, err)
	}
	return from, to, nil
}
