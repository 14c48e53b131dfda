package ordosqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

const (
	instanceColumns = `id, workflow, version, status, idempotency_key, business_key, parent_id, seq, state, created_at, updated_at, finished_at`
	sqlInstance     = `SELECT ` + instanceColumns + ` FROM instances WHERE id = ?`
	sqlInstanceKey  = `SELECT ` + instanceColumns + ` FROM instances WHERE workflow = ? AND idempotency_key = ?`

	// Each row holds at least one event, so LIMIT n rows holds at least n
	// events after AfterSeq. LIMIT -1 is no limit.
	sqlEvents = `SELECT events FROM events WHERE instance_id = ? AND last_seq > ? ORDER BY last_seq LIMIT ?`
)

// defaultListLimit is the Limit of ListInstances when none is given.
const defaultListLimit = 100

// GetInstance returns an instance's read model. Returns an error wrapping
// ordotype.ErrNotFound if there is none.
func (s *Store) GetInstance(ctx context.Context, id string) (*ordostore.Instance, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	inst, err := scanInstance(func(dest ...any) error { return s.readRow(ctx, sqlInstance, []any{id}, dest...) })
	if err != nil {
		return nil, fmt.Errorf("get instance %s: %w", id, interpretError(err))
	}
	return inst, nil
}

// GetInstanceByKey returns the instance of workflow with the idempotency
// key. Returns an error wrapping ordotype.ErrNotFound if there is none.
func (s *Store) GetInstanceByKey(ctx context.Context, workflow, idempotencyKey string) (*ordostore.Instance, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	inst, err := scanInstance(func(dest ...any) error {
		return s.readRow(ctx, sqlInstanceKey, []any{workflow, idempotencyKey}, dest...)
	})
	if err != nil {
		return nil, fmt.Errorf("get instance of %s with idempotency key %q: %w", workflow, idempotencyKey, interpretError(err))
	}
	return inst, nil
}

// ListInstances returns the instances matching every filter that is set,
// newest (greatest ID) first. CreatedAfter and CreatedBefore are exclusive.
func (s *Store) ListInstances(ctx context.Context, params *ordostore.ListInstancesParams) ([]*ordostore.Instance, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	var (
		where []string
		args  []any
	)
	if params.Workflow != "" {
		where, args = append(where, "workflow = ?"), append(args, params.Workflow)
	}
	switch len(params.Statuses) {
	case 0:
	case 1:
		where, args = append(where, "status = ?"), append(args, string(params.Statuses[0]))
	default:
		statuses, err := json.Marshal(params.Statuses)
		if err != nil {
			return nil, fmt.Errorf("list instances: %w", err)
		}
		where, args = append(where, "status IN (SELECT value FROM json_each(?))"), append(args, string(statuses))
	}
	if params.BusinessKey != "" {
		where, args = append(where, "business_key = ?"), append(args, params.BusinessKey)
	}
	if !params.CreatedAfter.IsZero() {
		where, args = append(where, "created_at > ?"), append(args, toNanos(params.CreatedAfter))
	}
	if !params.CreatedBefore.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, toNanos(params.CreatedBefore))
	}
	if params.BeforeID != "" {
		where, args = append(where, "id < ?"), append(args, params.BeforeID)
	}
	limit := params.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}
	args = append(args, limit)

	query := `SELECT ` + instanceColumns + ` FROM instances`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id DESC LIMIT ?`

	rows, err := s.read(ctx, query, args)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	insts, err := collect(rows, scanInstance)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	return insts, nil
}

// ListEvents returns an instance's events after AfterSeq, in seq order.
func (s *Store) ListEvents(ctx context.Context, params *ordostore.ListEventsParams) ([]*ordostore.Event, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()

	limit := params.Limit
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.read(ctx, sqlEvents, []any{params.InstanceID, params.AfterSeq, limit})
	if err != nil {
		return nil, fmt.Errorf("list events of %s: %w", params.InstanceID, err)
	}
	defer rows.Close()
	events := []*ordostore.Event{}
	for rows.Next() {
		var packed []byte
		if err := rows.Scan(&packed); err != nil {
			return nil, fmt.Errorf("list events of %s: %w", params.InstanceID, err)
		}
		if events, err = unpackRow(events, params.InstanceID, packed, params.AfterSeq); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list events of %s: %w", params.InstanceID, err)
	}
	if params.Limit > 0 && len(events) > params.Limit {
		events = events[:params.Limit]
	}
	return events, nil
}

// scanInstance scans the instanceColumns of one row.
func scanInstance(scan func(dest ...any) error) (*ordostore.Instance, error) {
	var (
		inst                      ordostore.Instance
		status                    string
		idemKey, bizKey, parentID sql.NullString
		createdAt, updatedAt      int64
		finishedAt                sql.NullInt64
	)
	err := scan(&inst.ID, &inst.Workflow, &inst.Version, &status, &idemKey, &bizKey, &parentID,
		&inst.Seq, &inst.State, &createdAt, &updatedAt, &finishedAt)
	if err != nil {
		return nil, err
	}
	inst.Status = ordotype.Status(status)
	inst.IdempotencyKey = idemKey.String
	inst.BusinessKey = bizKey.String
	inst.ParentID = parentID.String
	inst.CreatedAt = fromNanos(createdAt)
	inst.UpdatedAt = fromNanos(updatedAt)
	inst.FinishedAt = fromNanos(finishedAt.Int64)
	return &inst, nil
}
