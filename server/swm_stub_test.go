//go:build !ordo_remote_tasks

package server

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ordoflow/ordo/ordoclient"
)

// Without the engine's remote task API, task events that would complete or
// fail a task say so, and change nothing.
func TestSWM_TaskEventsWithoutRemoteTasks(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.do(t, request{method: "POST", path: "/api/v1/definitions", contentType: "application/json", body: pickupSWM})
	res := b.swmEvent(t, `{"business_ref_no": "ORDER-001", "component_name": "TAKEAWAY", "event_name": "StartWorkflow"}`)
	require.Equal(t, http.StatusCreated, res.status, string(res.body))
	before := b.storeState(t)
	for _, ev := range []string{"TaskCompleted", "TaskFailed"} {
		res = b.swmEvent(t, `{"business_ref_no": "ORDER-001", "component_name": "TAKEAWAY", "event_name": "`+ev+`", "task_name": "confirm_order"}`)
		require.Equal(t, http.StatusServiceUnavailable, res.status, string(res.body))
		require.Equal(t, ordoclient.CodeUnavailable, res.errorBody(t).Code)
	}
	require.Equal(t, before, b.storeState(t))
}
