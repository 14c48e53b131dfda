package ordosqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

const (
	messageColumns = `id, name, key, message_id, payload, created_at, expires_at, consumed_by`

	sqlInsertMessage = `INSERT INTO messages (name, key, message_id, payload, created_at, expires_at)
	VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	sqlListMessages = `SELECT ` + messageColumns + ` FROM messages
	WHERE name = ? AND key = ? AND consumed_by = '' AND expires_at > ? ORDER BY id LIMIT ?`
	sqlExpiredMessages = `SELECT ` + messageColumns + ` FROM messages WHERE expires_at <= ? ORDER BY expires_at LIMIT ?`
	sqlDeleteMessages  = `DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?))`
	sqlMessageConsumer = `SELECT consumed_by FROM messages WHERE id = ?`
	sqlConsumeMessage  = `UPDATE messages SET consumed_by = ? WHERE id = ? AND consumed_by = ''`

	sqlLastRowID = `SELECT last_insert_rowid()`

	sqlSlotHeld    = `SELECT COUNT(*) FROM slots WHERE grp = ? AND holder = ?`
	sqlSlotCount   = `SELECT COUNT(*) FROM slots WHERE grp = ?`
	sqlInsertSlot  = `INSERT INTO slots (grp, holder, created_at) VALUES (?, ?, ?)`
	sqlReleaseSlot = `DELETE FROM slots WHERE grp = ? AND holder = ?`
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
	err := s.inWriteTx(ctx, func(stmts *txStmts) error {
		n, err := stmts.exec(ctx, sqlInsertMessage, m.Name, m.Key, m.MessageID, m.Payload, toNanos(m.CreatedAt), toNanos(m.ExpiresAt))
		if err != nil {
			return interpretError(err)
		}
		if n == 0 {
			return fmt.Errorf("message %s %q: %w", m.Name, m.MessageID, ordotype.ErrAlreadyExists)
		}
		return stmts.scan(ctx, sqlLastRowID, nil, &out.ID)
	})
	if err != nil {
		return nil, fmt.Errorf("put message: %w", err)
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
		limit = defaultListLimit
	}
	rows, err := s.read(ctx, sqlListMessages, []any{p.Name, p.Key, toNanos(p.Now), limit})
	if err != nil {
		return nil, fmt.Errorf("list messages: %w", err)
	}
	msgs, err := collect(rows, scanMessage)
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
		limit = defaultListLimit
	}
	var dropped []*ordostore.Message
	deleted := 0
	err := s.inWriteTx(ctx, func(stmts *txStmts) error {
		rows, err := stmts.query(ctx, sqlExpiredMessages, toNanos(now), limit)
		if err != nil {
			return err
		}
		msgs, err := collect(rows, scanMessage)
		if err != nil {
			return err
		}
		ids := make([]int64, len(msgs))
		for i, m := range msgs {
			ids[i] = m.ID
			if m.ConsumedBy == "" {
				dropped = append(dropped, m)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		n, err := stmts.exec(ctx, sqlDeleteMessages, jsonInts(ids))
		deleted = int(n)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("expire messages: %w", err)
	}
	return dropped, deleted, nil
}

// AcquireSlot takes a slot of a group; see [ordostore.Store.AcquireSlot].
// The writer connection serializes every write, so the count and the
// insert are one atomic step.
func (s *Store) AcquireSlot(ctx context.Context, p *ordostore.AcquireSlotParams) (bool, error) {
	if p.Group == "" || p.Holder == "" || p.Limit < 1 {
		return false, fmt.Errorf("acquire slot: %w: group, holder and a positive limit are required", ordotype.ErrInvalid)
	}
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.leave()

	got := false
	err := s.inWriteTx(ctx, func(stmts *txStmts) error {
		var n int
		if err := stmts.scan(ctx, sqlSlotHeld, []any{p.Group, p.Holder}, &n); err != nil {
			return err
		}
		if n > 0 {
			got = true
			return nil
		}
		if err := stmts.scan(ctx, sqlSlotCount, []any{p.Group}, &n); err != nil {
			return err
		}
		if n >= p.Limit {
			return nil
		}
		if _, err := stmts.exec(ctx, sqlInsertSlot, p.Group, p.Holder, toNanos(p.Now)); err != nil {
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

	err := s.inWriteTx(ctx, func(stmts *txStmts) error {
		_, err := stmts.exec(ctx, sqlReleaseSlot, group, holder)
		return err
	})
	if err != nil {
		return fmt.Errorf("release slot in %s: %w", group, err)
	}
	return nil
}

// consume marks a message consumed inside Apply, after the check of the
// transition's instance write. It returns ErrDuplicate when the message is
// gone or taken.
func consume(ctx context.Context, stmts *txStmts, c *ordostore.ConsumeRef) error {
	n, err := stmts.exec(ctx, sqlConsumeMessage, c.By, c.ID)
	if err != nil {
		return fmt.Errorf("consume message %d: %w", c.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("consume message %d: %w", c.ID, ordotype.ErrDuplicate)
	}
	return nil
}

// consumable reports, before anything of a transition is written, whether
// its message can still be consumed.
func consumable(ctx context.Context, stmts *txStmts, c *ordostore.ConsumeRef) error {
	var by string
	if err := stmts.scan(ctx, sqlMessageConsumer, []any{c.ID}, &by); err != nil {
		if isNoRows(err) {
			return fmt.Errorf("message %d is gone: %w", c.ID, ordotype.ErrDuplicate)
		}
		return err
	}
	if by != "" {
		return fmt.Errorf("message %d was consumed by %s: %w", c.ID, by, ordotype.ErrDuplicate)
	}
	return nil
}

func scanMessage(scan func(dest ...any) error) (*ordostore.Message, error) {
	var (
		m                  ordostore.Message
		created, expiresAt int64
	)
	if err := scan(&m.ID, &m.Name, &m.Key, &m.MessageID, &m.Payload, &created, &expiresAt, &m.ConsumedBy); err != nil {
		return nil, err
	}
	m.CreatedAt = fromNanos(created)
	m.ExpiresAt = fromNanos(expiresAt)
	return &m, nil
}
