package ordopostgres

import (
	"context"
	"fmt"

	"github.com/ordoflow/ordo/ordostore"
)

const sqlInstancesByID = `SELECT ` + instanceColumns + ` FROM instances WHERE id = ANY($1::text[])`

var _ ordostore.InstancesGetter = (*Store)(nil)

// GetInstances returns the instances among ids that exist, in one query.
func (s *Store) GetInstances(ctx context.Context, ids []string) ([]*ordostore.Instance, error) {
	if len(ids) == 0 {
		return []*ordostore.Instance{}, nil
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	insts, err := query(ctx, s.pool, sqlInstancesByID, []any{ids}, scanInstance)
	if err != nil {
		return nil, fmt.Errorf("get instances: %w", err)
	}
	return insts, nil
}
