package ordopostgres

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPoolSettingsInTheURL: pgxpool settings in the URL win over the
// defaults of Config.
func TestPoolSettingsInTheURL(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)

	s := openSchema(t, schema)
	require.EqualValues(t, defaultMaxConns, s.pool.Config().MaxConns)

	u, err := url.Parse(testURL(t))
	require.NoError(t, err)
	q := u.Query()
	q.Set("pool_max_conns", "3")
	q.Set("application_name", "ordo-pool-test")
	u.RawQuery = q.Encode()
	s2, err := Open(t.Context(), u.String(), testConfig(schema))
	require.NoError(t, err)
	defer s2.Close()
	require.EqualValues(t, 3, s2.pool.Config().MaxConns)
	require.Equal(t, "ordo-pool-test", s2.pool.Config().ConnConfig.RuntimeParams["application_name"])
}
