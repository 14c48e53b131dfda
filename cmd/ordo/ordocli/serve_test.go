package ordocli

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/server"
)

func TestDevWorkflowIsTheExample(t *testing.T) {
	t.Parallel()
	example, err := os.ReadFile(filepath.Join("..", "..", "..", "examples", "order-fulfilment", "workflow.yaml"))
	require.NoError(t, err)
	require.Equal(t, string(example), string(devWorkflow),
		"cmd/ordo/ordocli/devdata/order-fulfilment.yaml must be a copy of examples/order-fulfilment/workflow.yaml")
	_, err = ordo.ParseDefinition(devWorkflow, "order-fulfilment.yaml")
	require.NoError(t, err)
}

func TestParseTokens(t *testing.T) {
	t.Parallel()
	toks, err := parseTokens(" a=admin, r=reader,,o = operator ,p=operator+approver")
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"a": {"admin"}, "r": {"reader"}, "o": {"operator"}, "p": {"operator", "approver"}}, toks)

	for _, bad := range []string{"secret-token", "=admin", "tok="} {
		_, err := parseTokens(bad)
		require.ErrorContains(t, err, "TOKEN=ROLE", bad)
		require.NotContains(t, err.Error(), "secret-token", "the token is redacted")
	}
}

func TestServeConfig(t *testing.T) {
	t.Parallel()

	t.Run("File", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "ordo.yaml")
		require.NoError(t, os.WriteFile(path, []byte("db: /var/lib/ordo.db\naddr: :7070\nmaxBodyBytes: 2048\ntaskLease: 45s\ntokens:\n  t1: admin\n  t2: reader\n  t3: [operator, approver, manager]\n"), 0o600))
		cfg, err := loadConfigFile(path)
		require.NoError(t, err)
		require.Equal(t, &serveConfig{DB: "/var/lib/ordo.db", Addr: ":7070", MaxBodyBytes: 2048, TaskLease: 45 * time.Second,
			Tokens: map[string][]string{"t1": {"admin"}, "t2": {"reader"}, "t3": {"operator", "approver", "manager"}}}, cfg)
		opts, err := cfg.serverOptions()
		require.NoError(t, err)
		require.Equal(t, map[string]server.Role{"t1": server.RoleAdmin, "t2": server.RoleReader, "t3": server.RoleOperator}, opts.Tokens)
		require.Equal(t, map[string][]string{"t3": {"approver", "manager"}}, opts.TaskRoles)
		require.Equal(t, "bearer tokens (1 admin, 1 operator, 1 reader; 1 with roles of human tasks)", authSummary(opts))
	})

	t.Run("EmptyFile", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "ordo.yaml")
		require.NoError(t, os.WriteFile(path, nil, 0o600))
		cfg, err := loadConfigFile(path)
		require.NoError(t, err)
		require.Equal(t, &serveConfig{}, cfg)
	})

	t.Run("UnknownKey", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "ordo.yaml")
		require.NoError(t, os.WriteFile(path, []byte("token:\n  t1: admin\n"), 0o600))
		_, err := loadConfigFile(path)
		require.ErrorContains(t, err, "token")
	})

	t.Run("Refusals", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			cfg  serveConfig
			want string
		}{
			{serveConfig{Addr: "0.0.0.0:7070"}, "refusing to serve"},
			{serveConfig{Addr: ":7070"}, "refusing to serve"},
			{serveConfig{Addr: "127.0.0.1:7070", Tokens: map[string][]string{"t": {"owner"}}}, `role "owner" is not reader, operator or admin`},
			{serveConfig{Addr: "127.0.0.1:7070", Tokens: map[string][]string{"t": {"owner", "approver"}}}, `exactly one of reader, operator or admin`},
			{serveConfig{Addr: "127.0.0.1:7070", Tokens: map[string][]string{"t": {"admin", "operator"}}}, `exactly one of reader, operator or admin`},
			{serveConfig{Addr: "127.0.0.1:7070", Tokens: map[string][]string{"t": {"operator", " "}}}, `a role is empty`},
			{serveConfig{Addr: "127.0.0.1:7070", MaxBodyBytes: -1}, "maxBodyBytes"},
			{serveConfig{Addr: "127.0.0.1:7070", TaskLease: -time.Second}, "taskLease"},
			{serveConfig{Addr: "7070"}, "HOST:PORT"},
		} {
			_, err := tc.cfg.serverOptions()
			require.ErrorContains(t, err, tc.want, "%+v", tc.cfg)
		}
		_, err := (&serveConfig{Addr: "0.0.0.0:7070", Insecure: true}).serverOptions()
		require.NoError(t, err)
		require.NoError(t, storeSpec{DB: "postgresql://x", Schema: "ordo"}.check())
		require.ErrorContains(t, storeSpec{}.check(), "--db is required")
		require.NoError(t, storeSpec{DB: "ordo.db"}.check())
		require.ErrorContains(t, storeSpec{DB: "ordo.db", Schema: "ordo"}.check(), "PostgreSQL only")
	})
}
