package ordosqlite

import (
	"context"
	"database/sql"
	"errors"
)

// readRow runs query on the read pool and scans its first row into dest. It
// returns sql.ErrNoRows when there is none.
func (s *Store) readRow(ctx context.Context, query string, args []any, dest ...any) error {
	stmt, err := s.rstmts.get(ctx, query)
	if err != nil {
		return err
	}
	return stmt.QueryRowContext(ctx, args...).Scan(dest...)
}

// read runs query on the read pool.
func (s *Store) read(ctx context.Context, query string, args []any) (*sql.Rows, error) {
	stmt, err := s.rstmts.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return stmt.QueryContext(ctx, args...)
}

// collect scans every row with scan and closes rows. It returns an empty,
// non-nil slice when there are no rows.
func collect[T any](rows *sql.Rows, scan func(scan func(dest ...any) error) (T, error)) (_ []T, err error) {
	defer func() { err = errors.Join(err, rows.Close()) }()
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
