package ordoclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/ordoflow/ordo/ordotype"
)

// Definition formats of [Client.DeployFormat].
const (
	// FormatOrdo is Ordo's own YAML/JSON template.
	FormatOrdo = "ordo"
	// FormatSWM is a Serverless Workflow Manager JSON template.
	FormatSWM = "swm"
)

// DeployFormat deploys a definition in the given format (FormatOrdo or
// FormatSWM); "" lets the server tell the format by the definition's shape,
// as [Client.Deploy] does.
func (c *Client) DeployFormat(ctx context.Context, source []byte, contentType, format string) (*DeployResult, error) {
	if format == "" {
		return c.Deploy(ctx, source, contentType)
	}
	if contentType == "" {
		contentType = "application/yaml"
	}
	var res DeployResult
	status, err := c.do(ctx, http.MethodPost, "/api/v1/definitions", url.Values{"format": {format}}, contentType, source, &res)
	if err != nil {
		return nil, err
	}
	res.Created = status == http.StatusCreated
	return &res, nil
}

// SWMEventResult says what a Serverless Workflow Manager event did.
type SWMEventResult struct {
	Event string `json:"event"`
	// Outcome is started, existing, completed, failed, rescheduled or
	// unchanged.
	Outcome    string          `json:"outcome"`
	InstanceID string          `json:"instanceId"`
	Workflow   string          `json:"workflow"`
	Version    int             `json:"version"`
	Step       string          `json:"step,omitempty"`
	Status     ordotype.Status `json:"status"`
}

// SWMEvent sends a Serverless Workflow Manager event (StartWorkflow,
// TaskCompleted, TaskFailed or TaskPending, as JSON) to POST
// /api/v1/swm/events.
func (c *Client) SWMEvent(ctx context.Context, event json.RawMessage) (*SWMEventResult, error) {
	var res SWMEventResult
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/swm/events", nil, "application/json", event, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
