package engine

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRoles(t *testing.T) {
	t.Parallel()
	all, err := ParseRoles("")
	require.NoError(t, err)
	require.Equal(t, AllRoles, all)
	got, err := ParseRoles("executor, effects")
	require.NoError(t, err)
	require.Equal(t, []string{"executor", "effects"}, got)
	for in, want := range map[string]string{
		"api,worker":    `unknown role "worker": roles are api, executor, effects, timers`,
		"api,,timers":   `unknown role ""`,
		"timers,timers": `role "timers" is given twice`,
	} {
		_, err := ParseRoles(in)
		require.ErrorContains(t, err, want, in)
	}
}

func TestRolesNeedASharedStore(t *testing.T) {
	t.Parallel()
	_, err := New(context.Background(), Config{Store: openStore(t), Roles: []string{RoleAPI}})
	require.ErrorContains(t, err, "roles api leave work to other nodes, but a sqlite store is used by one process only")

	eng, err := New(context.Background(), Config{Store: openStore(t), Roles: AllRoles})
	require.NoError(t, err)
	require.NoError(t, eng.Stop(context.Background()))
	for _, r := range AllRoles {
		require.True(t, eng.HasRole(r), r)
	}
}
