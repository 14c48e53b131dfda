package ordopostgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

const (
	messageColumns = `id, name, key, message_id, payload, created_at, expires_at, consumed_by`

	sqlInsertMessage = `INSERT INTO messages (name, key, message_id, payload, created_at, expires_at)
	VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name, message_id) DO NOTHING RETURNING id`
	sqlListMessages = `SELECT ` + messageColumns + ` FROM messages
	WHERE name = $1 AND key = $2 AND consumed_by = '' AND expires_at > $3 ORDER BY id LIMIT $4`
	sqlExpireMessages = `DELETE FROM messages WHERE id IN (
		SELECT id FROM messages WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
	RETURNING ` + messageColumns

	// The group's lock serializes the count and the insert across nodes.
	sqlLockSlots   = `SELECT pg_advisory_xact_lock(hashtextextended('ordo.slots:' || $1, 0))`
	sqlSlotHeld    = `SELECT EXISTS (SELECT 1 FROM slots WHERE grp = $1 AND holder = $2)`
	sqlSlotCount   = `SELECT COUNT(*) FROM slots WHERE grp = $1`
	sqlInsertSlot  = `INSERT INTO slots (grp, holder, created_at) VALUES ($1, $2, $3)`
	sqlReleaseSlot = `DELETE FROM slots WHERE grp = $1 AND holder = $2`
)

// PutMessage keeps a message; see [ordostore.Store.PutMessage].
func (s *Store) PutMessage(ctx context.Context, m *ordostore.Message) (*ordostore.Message, error) {
	if m.Name == "" || m.MessageID == "" {
		return nil, fmt.Errorf("put message: %w: name and message ID are required", ordotype.ErrInvalid)
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	out := *m
	out.ConsumedBy = ""
	out.CreatedAt = fromNanos(toNanos(m.CreatedAt))
	out.ExpiresAt = fromNanos(toNanos(m.ExpiresAt))
	err := s.pool.QueryRow(ctx, sqlInsertMessage, m.Name, m.Key, m.MessageID, m.Payload, toNanos(m.CreatedAt), toNanos(m.ExpiresAt)).Scan(&out.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("put message %s %q: %w", m.Name, m.MessageID, ordotype.ErrAlreadyExists)
	}
	if err != nil {
		return nil, fmt.Errorf("put message: %w", interpretError(err))
	}
	return &out, nil
}

// ListMessages returns waiting messages; see [ordostore.Store.ListMessages].
func (s *Store) ListMessages(ctx context.Context, p *ordostore.ListMessagesParams) ([]*ordostore.Message, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, sqlListMessages, p.Name, p.Key, toNanos(p.Now), limit)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	msgs, err := pgx.CollectRows(rows, scanMessage)
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	return msgs, nil
}

// ExpireMessages deletes expired messages; see [ordostore.Store.ExpireMessages].
func (s *Store) ExpireMessages(ctx context.Context, now time.Time, limit int) ([]*ordostore.Message, int, error) {
	if err := s.enter(); err != nil {
		return nil, 0, err
	}
	defer s.leave()

	if limit <= 0 {
		limit = 100
	}
	rows, err := s.pool.Query(ctx, sqlExpireMessages, toNanos(now), limit)
	if err != nil {
		return nil, 0, fmt.Errorf("expire messages: %w", err)
	}
	msgs, err := pgx.CollectRows(rows, scanMessage)
	if err != nil {
		return nil, 0, fmt.Errorf("expire messages: %w", err)
	}
	var dropped []*ordostore.Message
	for _, m := range msgs {
		if m.ConsumedBy == "" {
			dropped = append(dropped, m)
		}
	}
	return dropped, len(msgs), nil
}

// AcquireSlot takes a slot of a group; see [ordostore.Store.AcquireSlot].
func (s *Store) AcquireSlot(ctx context.Context, p *ordostore.AcquireSlotParams) (bool, error) {
	if p.Group == "" || p.Holder == "" || p.Limit < 1 {
		return false, fmt.Errorf("acquire slot: %w: group, holder and a positive limit are required", ordotype.ErrInvalid)
	}
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.leave()

	got := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlLockSlots, p.Group); err != nil {
			return err
		}
		var held bool
		if err := tx.QueryRow(ctx, sqlSlotHeld, p.Group, p.Holder).Scan(&held); err != nil {
			return err
		}
		if held {
			got = true
			return nil
		}
		var n int
		if err := tx.QueryRow(ctx, sqlSlotCount, p.Group).Scan(&n); err != nil {
			return err
		}
		if n >= p.Limit {
			return nil
		}
		if _, err := tx.Exec(ctx, sqlInsertSlot, p.Group, p.Holder, toNanos(p.Now)); err != nil {
			return err
		}
		got = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("acquire slot in %s: %w", p.Group, err)
	}
	return got, nil
}

// ReleaseSlot frees a slot; see [ordostore.Store.ReleaseSlot].
func (s *Store) ReleaseSlot(ctx context.Context, group, holder string) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()

	if _, err := s.pool.Exec(ctx, sqlReleaseSlot, group, holder); err != nil {
		return fmt.Errorf("release slot in %s: %w", group, err)
	}
	return nil
}

func scanMessage(row pgx.CollectableRow) (*ordostore.Message, error) {
	var (
		m                  ordostore.Message
		created, expiresAt int64
	)
	if err := row.Scan(&m.ID, &m.Name, &m.Key, &m.MessageID, &m.Payload, &created, &expiresAt, &m.ConsumedBy); err != nil {
		return nil, err
	}
	m.CreatedAt = fromNanos(created)
	m.ExpiresAt = fromNanos(expiresAt)
	return &m, nil
}
