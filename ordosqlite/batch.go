package ordosqlite

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/ordoflow/ordo/ordostore"
)

const sqlInstancesByID = `SELECT ` + instanceColumns + ` FROM instances WHERE id IN (SELECT value FROM json_each(?))`

var _ ordostore.InstancesGetter = (*Store)(nil)

// GetInstances returns the instances among ids that exist, in one read.
func (s *Store) GetInstances(ctx context.Context, ids []string) ([]*ordostore.Instance, error) {
	if len(ids) == 0 {
		return []*ordostore.Instance{}, nil
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("get instances: %w", err)
	}
	rows, err := s.read(ctx, sqlInstancesByID, []any{string(list)})
	if err != nil {
		return nil, fmt.Errorf("get instances: %w", interpretError(err))
	}
	insts, err := collect(rows, scanInstance)
	if err != nil {
		return nil, fmt.Errorf("get instances: %w", interpretError(err))
	}
	return insts, nil
}
