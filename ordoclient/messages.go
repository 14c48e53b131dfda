package ordoclient

import (
	"context"
	"encoding/json"
	"net/http"
)

// SendRequest is the body of POST /api/v1/messages: a message for the
// receive steps waiting for Name with the correlation key Key.
type SendRequest struct {
	Name string `json:"name"`
	Key  string `json:"key,omitempty"`
	// ID identifies the message: sending the same name and ID again does
	// nothing. The server makes one when empty.
	ID string `json:"id,omitempty"`
	// Payload is the message's body, one JSON value; it becomes the
	// receive step's output. Empty means {}.
	Payload json.RawMessage `json:"payload,omitempty"`
	// TTL is how long the message waits for a receive step when none waits
	// yet, as a Go or ISO 8601 duration ("24h", "P7D"). Defaults to 24h.
	TTL string `json:"ttl,omitempty"`
}

// SendResult is the answer to POST /api/v1/messages.
type SendResult struct {
	ID string `json:"id"`
	// Duplicate is set when a message with this name and ID was sent
	// before: nothing was done.
	Duplicate bool `json:"duplicate"`
	// DeliveredTo are the instances whose receive step took the message;
	// empty when it is kept until one waits for it.
	DeliveredTo []string `json:"deliveredTo"`
}

// Send sends a message to the receive steps waiting for it.
func (c *Client) Send(ctx context.Context, req *SendRequest) (*SendResult, error) {
	var res SendResult
	if err := c.doJSON(ctx, http.MethodPost, "/api/v1/messages", req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}
