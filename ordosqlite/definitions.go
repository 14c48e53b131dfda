package ordosqlite

import (
	"context"
	"fmt"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

const (
	definitionColumns   = `name, version, hash, source, created_at`
	sqlLatestDefinition = `SELECT ` + definitionColumns + ` FROM definitions WHERE name = ? ORDER BY version DESC LIMIT 1`
	sqlDefinition       = `SELECT ` + definitionColumns + ` FROM definitions WHERE name = ? AND version = ?`
	sqlInsertDefinition = `INSERT INTO definitions (` + definitionColumns + `) VALUES (?, ?, ?, ?, ?)`
	sqlListDefinitions  = `SELECT ` + definitionColumns + ` FROM definitions AS d
	WHERE version = (SELECT MAX(version) FROM definitions WHERE name = d.name)
	ORDER BY name`
)

// PutDefinition stores a new version of a definition unless the latest
// version has the same hash; see [ordostore.Store.PutDefinition]. Name and
// Hash must not be empty (ordotype.ErrInvalid).
func (s *Store) PutDefinition(ctx context.Context, params *ordostore.PutDefinitionParams) (*ordostore.Definition, bool, error) {
	if params.Name == "" || params.Hash == "" {
		return nil, false, fmt.Errorf("%w: a definition needs a name and a hash", ordotype.ErrInvalid)
	}
	if err := s.enter(); err != nil {
		return nil, false, err
	}
	defer s.leave()

	var (
		def     *ordostore.Definition
		created bool
	)
	err := s.inWriteTx(ctx, func(stmts *txStmts) error {
		latest, err := scanDefinition(func(dest ...any) error {
			return stmts.scan(ctx, sqlLatestDefinition, []any{params.Name}, dest...)
		})
		switch {
		case err == nil && latest.Hash == params.Hash:
			def = latest
			return nil
		case err != nil && !isNoRows(err):
			return err
		}
		def = &ordostore.Definition{
			Name:      params.Name,
			Version:   1,
			Hash:      params.Hash,
			Source:    params.Source,
			CreatedAt: fromNanos(toNanos(params.Now)),
		}
		if latest != nil {
			def.Version = latest.Version + 1
		}
		created = true
		_, err = stmts.exec(ctx, sqlInsertDefinition, def.Name, def.Version, def.Hash, def.Source, toNanos(params.Now))
		return interpretError(err)
	})
	if err != nil {
		return nil, false, fmt.Errorf("put definition %s: %w", params.Name, err)
	}
	return def, created, nil
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
	def, err := scanDefinition(func(dest ...any) error { return s.readRow(ctx, query, args, dest...) })
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

	rows, err := s.read(ctx, sqlListDefinitions, nil)
	if err != nil {
		return nil, fmt.Errorf("list definitions: %w", err)
	}
	defs, err := collect(rows, scanDefinition)
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
