package ordosqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// stmtCache holds the prepared statements of one *sql.DB, keyed by their SQL
// text.
//
// The writer's cache is filled once at Open and then frozen: preparing a
// statement on a *sql.DB needs a free connection, and the writer's only
// connection is busy in the transaction that would ask for it. The read
// pool's cache prepares on first use.
type stmtCache struct {
	db     *sql.DB
	frozen bool
	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: make(map[string]*sql.Stmt)}
}

// prepareAll prepares queries and freezes the cache.
func (c *stmtCache) prepareAll(ctx context.Context, queries []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, query := range queries {
		stmt, err := c.db.PrepareContext(ctx, query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", query, err)
		}
		c.stmts[query] = stmt
	}
	c.frozen = true
	return nil
}

// get returns the prepared statement for query, preparing it on first use
// unless the cache is frozen.
func (c *stmtCache) get(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stmt, ok := c.stmts[query]; ok {
		return stmt, nil
	}
	if c.frozen {
		return nil, fmt.Errorf("statement was not prepared at open: %q", query)
	}
	stmt, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = stmt
	return stmt, nil
}

// close closes every statement.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for query, stmt := range c.stmts {
		errs = append(errs, stmt.Close())
		delete(c.stmts, query)
	}
	return errors.Join(errs...)
}

// txStmts binds the writer's statements to one transaction, each once.
type txStmts struct {
	tx    *sql.Tx
	cache *stmtCache
	stmts map[string]*sql.Stmt
}

func newTxStmts(tx *sql.Tx, cache *stmtCache) *txStmts {
	return &txStmts{tx: tx, cache: cache, stmts: make(map[string]*sql.Stmt)}
}

// get returns the statement for query bound to the transaction.
func (t *txStmts) get(ctx context.Context, query string) (*sql.Stmt, error) {
	if stmt, ok := t.stmts[query]; ok {
		return stmt, nil
	}
	stmt, err := t.cache.get(ctx, query)
	if err != nil {
		return nil, err
	}
	stmt = t.tx.StmtContext(ctx, stmt)
	t.stmts[query] = stmt
	return stmt, nil
}

// exec runs query in the transaction and returns how many rows it changed.
func (t *txStmts) exec(ctx context.Context, query string, args ...any) (int64, error) {
	stmt, err := t.get(ctx, query)
	if err != nil {
		return 0, err
	}
	res, err := stmt.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// scan runs query in the transaction and scans its first row into dest.
// It returns sql.ErrNoRows when there is none.
func (t *txStmts) scan(ctx context.Context, query string, args []any, dest ...any) error {
	stmt, err := t.get(ctx, query)
	if err != nil {
		return err
	}
	return stmt.QueryRowContext(ctx, args...).Scan(dest...)
}

// query runs query in the transaction.
func (t *txStmts) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	stmt, err := t.get(ctx, query)
	if err != nil {
		return nil, err
	}
	return stmt.QueryContext(ctx, args...)
}
