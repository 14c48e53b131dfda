package server

import (
	"net/http"
	"time"

	"github.com/ordoflow/ordo"
	"github.com/ordoflow/ordo/internal/definition"
	"github.com/ordoflow/ordo/ordoclient"
)

// send delivers a message to the receive steps waiting for it, or keeps it.
func (s *Server) send(w http.ResponseWriter, r *http.Request) error {
	var req ordoclient.SendRequest
	if err := decodeJSON(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return &apiError{code: ordoclient.CodeInvalidParameter, message: "name: a message needs a name", details: map[string]any{"parameter": "name"}}
	}
	var ttl time.Duration
	if req.TTL != "" {
		d, err := definition.ParseDuration(req.TTL)
		if err != nil || d <= 0 {
			return &apiError{code: ordoclient.CodeInvalidParameter,
				message: "ttl: " + req.TTL + " is not a positive duration (\"24h\", \"P7D\")", details: map[string]any{"parameter": "ttl"}}
		}
		ttl = time.Duration(d)
	}
	res, err := s.eng.Send(r.Context(), req.Name, req.Key, req.Payload, &ordo.SendOptions{MessageID: req.ID, TTL: ttl})
	if err != nil {
		return err
	}
	to := res.DeliveredTo
	if to == nil {
		to = []string{}
	}
	status := http.StatusAccepted
	if len(to) > 0 {
		status = http.StatusOK
	}
	writeJSON(w, status, &ordoclient.SendResult{ID: res.MessageID, Duplicate: res.Duplicate, DeliveredTo: to})
	return nil
}
