package ordopostgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

const (
	definitionColumns   = `name, version, hash, source, created_at`
	sqlLatestDefinition = `SELECT ` + definitionColumns + ` FROM definitions WHERE name = $1 ORDER BY version DESC LIMIT 1`
	sqlDefinition       = `SELECT ` + definitionColumns + ` FROM definitions WHERE name = $1 AND version = $2`
	// A conflict means another process inserted that version first.
	sqlInsertDefinition = `INSERT INTO definitions (` + definitionColumns + `) VALUES ($1, $2, $3, $4, $5)
	ON CONFLICT DO NOTHING`
	sqlListDefinitions = `SELECT DISTINCT ON (name) ` + definitionColumns + ` FROM definitions
	ORDER BY name, version DESC`
)

// maxPutAttempts bounds how many times PutDefinition reads the latest
// version again after another process inserted the version it wanted.
const maxPutAttempts = 10

// PutDefinition stores a new version of a definition unless the latest
// version has the same hash; see [ordostore.Store.PutDefinition]. Name and
// Hash must not be empty (ordotype.ErrInvalid).
//
// Processes putting the same name at once do not need a lock: each inserts
// latest+1 with ON CONFLICT DO NOTHING, and one that loses the race reads
// the new latest version and decides again.
func (s *Store) PutDefinition(ctx context.Context, params *ordostore.PutDefinitionParams) (*ordostore.Definition, bool, error) {
	if params.Name == "" || params.Hash == "" {
		return nil, false, fmt.Errorf("%w: a definition needs a name and a hash", ordotype.ErrInvalid)
	}
	if err := s.enter(); err != nil {
		return nil, false, err
	}
	defer s.leave()

	for range maxPutAttempts {
		latest, err := scanDefinition(s.pool.QueryRow(ctx, sqlLatestDefinition, params.Name).Scan)
		switch {
		case err == nil && latest.Hash == params.Hash:
			return latest, false, nil
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return nil, false, fmt.Errorf("put definition %s: %w", params.Name, err)
		}
		def := &ordostore.Definition{
			Name:      params.Name,
			Version:   1,
			Hash:      params.Hash,
			Source:    params.Source,
			CreatedAt: fromNanos(toNanos(params.Now)),
		}
		if latest != nil {
			def.Version = latest.Version + 1
		}
		tag, err := s.pool.Exec(ctx, sqlInsertDefinition, def.Name, def.Version, def.Hash, def.Source, toNanos(params.Now))
		if err != nil {
			return nil, false, fmt.Errorf("put definition %s: %w", params.Name, interpretError(err))
		}
		if tag.RowsAffected() == 1 {
			return def, true, nil
		}
	}
	return nil, false, fmt.Errorf("put definition %s: %w: other processes kept adding versions", params.Name, ordotype.ErrConflict)
}

// GetDefinition returns one version of a definition, or the latest for
// version 0. Returns an error wrapping ordotype.ErrNotFound if there is none.
func (s *Store) GetDefinition(ctx context.Context, name string, version int) (*ordostore.Definition, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	query, args := sqlDefinition, []any{name, version}
	if version == 0 {
		query, args = sqlLatestDefinition, []any{name}
	}
	def, err := scanDefinition(s.pool.QueryRow(ctx, query, args...).Scan)
	if err != nil {
		return nil, fmt.Errorf("get definition %s version %d: %w", name, version, interpretError(err))
	}
	return def, nil
}

// ListDefinitions returns the latest version of every definition, by name.
func (s *Store) ListDefinitions(ctx context.Context) ([]*ordostore.Definition, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	defs, err := query(ctx, s.pool, sqlListDefinitions, nil, scanDefinition)
	if err != nil {
		return nil, fmt.Errorf("list definitions: %w", err)
	}
	return defs, nil
}

// scanDefinition scans the definitionColumns of one row.
func scanDefinition(scan func(dest ...any) error) (*ordostore.Definition, error) {
	var (
		def       ordostore.Definition
		createdAt int64
	)
	if err := scan(&def.Name, &def.Version, &def.Hash, &def.Source, &createdAt); err != nil {
		return nil, err
	}
	def.CreatedAt = fromNanos(createdAt)
	return &def, nil
}
