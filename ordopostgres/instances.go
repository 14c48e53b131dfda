package ordopostgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/ordoflow/ordo/ordostore"
	"github.com/ordoflow/ordo/ordotype"
)

const (
	instanceColumns = `id, workflow, version, status, idempotency_key, business_key, parent_id, seq, state, created_at, updated_at, finished_at`
	sqlInstance     = `SELECT ` + instanceColumns + ` FROM instances WHERE id = $1`
	sqlInstanceKey  = `SELECT ` + instanceColumns + ` FROM instances WHERE workflow = $1 AND idempotency_key = $2`

	eventColumns = `instance_id, seq, type, step_id, attempt, data, created_at`
	// LIMIT NULL is no limit.
	sqlEvents = `SELECT ` + eventColumns + ` FROM events WHERE instance_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`
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

	inst, err := scanInstance(s.pool.QueryRow(ctx, sqlInstance, id).Scan)
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

	inst, err := scanInstance(s.pool.QueryRow(ctx, sqlInstanceKey, workflow, idempotencyKey).Scan)
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
		args  argList
	)
	arg := args.add
	if params.Workflow != "" {
		where = append(where, "workflow = "+arg(params.Workflow))
	}
	switch len(params.Statuses) {
	case 0:
	case 1:
		where = append(where, "status = "+arg(string(params.Statuses[0])))
	default:
		statuses := make([]string, len(params.Statuses))
		for i, st := range params.Statuses {
			statuses[i] = string(st)
		}
		where = append(where, "status = ANY("+arg(statuses)+"::text[])")
	}
	if params.BusinessKey != "" {
		where = append(where, "business_key = "+arg(params.BusinessKey))
	}
	if !params.CreatedAfter.IsZero() {
		where = append(where, "created_at > "+arg(toNanos(params.CreatedAfter)))
	}
	if !params.CreatedBefore.IsZero() {
		where = append(where, "created_at < "+arg(toNanos(params.CreatedBefore)))
	}
	if params.BeforeID != "" {
		where = append(where, "id < "+arg(params.BeforeID))
	}
	limit := params.Limit
	if limit <= 0 {
		limit = defaultListLimit
	}

	sql := `SELECT ` + instanceColumns + ` FROM instances`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY id DESC LIMIT ` + arg(limit)

	insts, err := query(ctx, s.pool, sql, args, scanInstance)
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

	var limit *int
	if params.Limit > 0 {
		limit = &params.Limit
	}
	events, err := query(ctx, s.pool, sqlEvents, []any{params.InstanceID, params.AfterSeq, limit}, scanEvent)
	if err != nil {
		return nil, fmt.Errorf("list events of %s: %w", params.InstanceID, err)
	}
	return events, nil
}

// scanInstance scans the instanceColumns of one row.
func scanInstance(scan func(dest ...any) error) (*ordostore.Instance, error) {
	var (
		inst                      ordostore.Instance
		status                    string
		idemKey, bizKey, parentID *string
		createdAt, updatedAt      int64
		finishedAt                *int64
	)
	err := scan(&inst.ID, &inst.Workflow, &inst.Version, &status, &idemKey, &bizKey, &parentID,
		&inst.Seq, &inst.State, &createdAt, &updatedAt, &finishedAt)
	if err != nil {
		return nil, err
	}
	inst.Status = ordotype.Status(status)
	inst.IdempotencyKey = deref(idemKey)
	inst.BusinessKey = deref(bizKey)
	inst.ParentID = deref(parentID)
	inst.CreatedAt = fromNanos(createdAt)
	inst.UpdatedAt = fromNanos(updatedAt)
	inst.FinishedAt = fromNanos(deref(finishedAt))
	return &inst, nil
}

// scanEvent scans the eventColumns of one row.
func scanEvent(scan func(dest ...any) error) (*ordostore.Event, error) {
	var (
		ev        ordostore.Event
		createdAt int64
	)
	if err := scan(&ev.InstanceID, &ev.Seq, &ev.Type, &ev.StepID, &ev.Attempt, &ev.Data, &createdAt); err != nil {
		return nil, err
	}
	ev.CreatedAt = fromNanos(createdAt)
	return &ev, nil
}
