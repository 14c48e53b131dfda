package ordocli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/ordopostgres"
	"github.com/ordoflow/ordo/ordosqlite"
	"github.com/ordoflow/ordo/ordostore"
)

// storeSpec says which store a command runs on: an SQLite file or a
// PostgreSQL URL with its schema.
type storeSpec struct {
	DB      string
	Schema  string // PostgreSQL only; "" is public
	Migrate bool   // apply migrations at open (PostgreSQL; SQLite always does)
}

// isPostgres reports whether db is a PostgreSQL URL.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// check validates the spec.
func (s storeSpec) check() error {
	if s.DB == "" {
		return errors.New("--db is required: an SQLite file (created if missing) or a postgres:// URL")
	}
	if isPostgres(s.DB) {
		if _, err := url.Parse(s.DB); err != nil {
			return fmt.Errorf("--db: not a valid PostgreSQL URL: %s", redactURL(s.DB))
		}
		return nil
	}
	if s.Schema != "" {
		return fmt.Errorf("--schema %q applies to PostgreSQL only; --db %s is an SQLite file", s.Schema, s.DB)
	}
	return nil
}

// open opens the store.
func (s storeSpec) open(ctx context.Context, logger *slog.Logger) (ordostore.Store, error) {
	if isPostgres(s.DB) {
		return ordopostgres.Open(ctx, s.DB, &ordopostgres.Config{Schema: s.Schema, Logger: logger, DisableMigrate: !s.Migrate})
	}
	return ordosqlite.Open(ctx, s.DB, &ordosqlite.Config{Logger: logger})
}

// opener returns the spec as an ordo.StoreOpener.
func (s storeSpec) opener(logger *slog.Logger) ordo.StoreOpener {
	return func(ctx context.Context) (ordostore.Store, error) { return s.open(ctx, logger) }
}

// describe says what the store is, without a password.
func (s storeSpec) describe() string {
	if isPostgres(s.DB) {
		schema := s.Schema
		if schema == "" {
			schema = "public"
		}
		return fmt.Sprintf("%s schema %s (PostgreSQL)", redactURL(s.DB), schema)
	}
	abs, _ := filepath.Abs(s.DB)
	return abs + " (SQLite)"
}

// redactURL hides the password of a URL.
func redactURL(db string) string {
	u, err := url.Parse(db)
	if err != nil {
		return "postgres://…"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// durationPart is one leading day or week count of a retention period.
var durationPart = regexp.MustCompile(`^(\d+)([dw])`)

// parseAge parses a retention period: a Go duration (720h, 90m), with
// days (d) and weeks (w) allowed in front: 30d, 2w, 1d12h.
func parseAge(s string) (time.Duration, error) {
	rest := strings.TrimSpace(s)
	if strings.Contains(rest, "-") {
		return 0, fmt.Errorf("invalid duration %q: must be positive", s)
	}
	var total time.Duration
	for {
		m := durationPart.FindStringSubmatch(rest)
		if m == nil {
			break
		}
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 100000 {
			return 0, fmt.Errorf("invalid duration %q: %s%s is too long", s, m[1], m[2])
		}
		unit := 24 * time.Hour
		if m[2] == "w" {
			unit *= 7
		}
		total += time.Duration(n) * unit
		rest = rest[len(m[0]):]
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q (use 30d, 2w, 1d12h or a Go duration such as 720h)", s)
		}
		total += d
	} else if total == 0 && strings.TrimSpace(s) == "" {
		return 0, errors.New("a duration is required (such as 30d)")
	}
	if total <= 0 {
		return 0, fmt.Errorf("invalid duration %q: must be positive", s)
	}
	return total, nil
}

// allRoles are every role of a node.
var allRoles = []string{ordo.RoleAPI, ordo.RoleExecutor, ordo.RoleEffects, ordo.RoleTimers}
