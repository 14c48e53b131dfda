// Package ordoclient is the Go client of the Ordo server's HTTP API, and the
// types of that API's requests, answers and error codes.
//
//	c, err := ordoclient.New("http://127.0.0.1:7070", &ordoclient.Options{Token: os.Getenv("ORDO_TOKEN")})
//	res, err := c.Start(ctx, "order-fulfilment", &ordoclient.StartRequest{Input: json.RawMessage(`{"orderId":"o-1"}`)})
//	inst, err := c.Get(ctx, res.ID)
//
// Every method returns an [*Error] for an error answer of the server; check
// it with errors.Is against ordotype.ErrNotFound, ordotype.ErrInvalid or
// [ErrUnauthorized], or with errors.As for its [Code].
package ordoclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ordoflow/ordo/ordotype"
)

// Options configure a [Client]. A nil *Options means all defaults.
type Options struct {
	// Token is sent as a bearer token. Empty sends none (for servers that
	// run without authentication).
	Token string
	// HTTPClient makes the requests. Defaults to a client with a 30 second
	// timeout.
	HTTPClient *http.Client
	// UserAgent is sent in the User-Agent header. Defaults to "ordoclient".
	UserAgent string
}

// Client calls an Ordo server. It is safe for concurrent use.
type Client struct {
	base      string
	token     string
	http      *http.Client
	userAgent string
}

// New returns a client of the server at baseURL (scheme, host and port,
// e.g. "http://127.0.0.1:7070"). It returns an error when baseURL is not an
// http or https URL.
func New(baseURL string, opts *Options) (*Client, error) {
	if opts == nil {
		opts = &Options{}
	}
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("ordoclient: server URL %q must look like http://host:port", baseURL)
	}
	c := &Client{
		base:      strings.TrimRight(u.String(), "/"),
		token:     opts.Token,
		http:      opts.HTTPClient,
		userAgent: opts.UserAgent,
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	if c.userAgent == "" {
		c.userAgent = "ordoclient"
	}
	return c, nil
}

// Deploy stores a workflow definition (a YAML or JSON template) as a new
// version, or returns the latest version when it is identical to it.
// contentType is "application/yaml" or "application/json"; empty means YAML.
//
// Errors: an [*Error] with [CodeInvalidDefinition] whose [Error.Problems]
// list what is wrong.
func (c *Client) Deploy(ctx context.Context, source []byte, contentType string) (*DeployResult, error) {
	if contentType == "" {
		contentType = "application/yaml"
	}
	var res DeployResult
	status, err := c.do(ctx, http.MethodPost, "/api/v1/definitions", nil, contentType, source, &res)
	if err != nil {
		return nil, err
	}
	res.Created = status == http.StatusCreated
	return &res, nil
}

// Definitions returns the latest version of every definition, by name.
func (c *Client) Definitions(ctx context.Context) ([]Definition, error) {
	var res DefinitionList
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/definitions", nil, "", nil, &res); err != nil {
		return nil, err
	}
	return res.Definitions, nil
}

// Definition returns one version of a definition; version 0 means the
// latest. Errors: [ordotype.ErrNotFound].
func (c *Client) Definition(ctx context.Context, name string, version int) (*Definition, error) {
	path := "/api/v1/definitions/" + url.PathEscape(name)
	if version > 0 {
		path += "/versions/" + strconv.Itoa(version)
	}
	var res Definition
	if _, err := c.do(ctx, http.MethodGet, path, nil, "", nil, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Start starts an instance of a workflow. When req's (or the definition's)
// idempotency key was used before, it returns the existing instance.
// Errors: [ordotype.ErrNotFound] for an unknown workflow or version,
// [ordotype.ErrInvalid] for input the engine refuses.
func (c *Client) Start(ctx context.Context, workflow string, req *StartRequest) (*StartResult, error) {
	if req == nil {
		req = &StartRequest{}
	}
	var res StartResult
	if err := c.doJSON(ctx, http.MethodPost, "/api/v1/workflows/"+url.PathEscape(workflow)+"/instances", req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Get returns an instance with its steps. Errors: [ordotype.ErrNotFound].
func (c *Client) Get(ctx context.Context, id string) (*Instance, error) {
	var res Instance
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/instances/"+url.PathEscape(id), nil, "", nil, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// ListParams filter [Client.List]. Zero fields do not filter.
type ListParams struct {
	Workflow      string
	Statuses      []ordotype.Status
	BusinessKey   string
	CreatedAfter  time.Time
	CreatedBefore time.Time
	// Before is the cursor of a page: [InstanceList].Next of the page
	// before it.
	Before string
	// Limit is the page size. The server defaults it to 100 and caps it at
	// 1000.
	Limit int
}

// List returns a page of instances, newest first.
func (c *Client) List(ctx context.Context, p *ListParams) (*InstanceList, error) {
	if p == nil {
		p = &ListParams{}
	}
	q := url.Values{}
	if p.Workflow != "" {
		q.Set("workflow", p.Workflow)
	}
	for _, s := range p.Statuses {
		q.Add("status", string(s))
	}
	if p.BusinessKey != "" {
		q.Set("businessKey", p.BusinessKey)
	}
	if !p.CreatedAfter.IsZero() {
		q.Set("createdAfter", p.CreatedAfter.Format(time.RFC3339Nano))
	}
	if !p.CreatedBefore.IsZero() {
		q.Set("createdBefore", p.CreatedBefore.Format(time.RFC3339Nano))
	}
	if p.Before != "" {
		q.Set("before", p.Before)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	var res InstanceList
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/instances", q, "", nil, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Journal returns an instance's whole history, in order.
// Errors: [ordotype.ErrNotFound].
func (c *Client) Journal(ctx context.Context, id string) ([]Event, error) {
	var res Journal
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/instances/"+url.PathEscape(id)+"/journal", nil, "", nil, &res); err != nil {
		return nil, err
	}
	return res.Events, nil
}

// Resubmit restarts an instance that is parked for review or failed and
// returns it. Errors: [ordotype.ErrNotFound]; [ordotype.ErrInvalid] when
// the instance is in another status ([CodeInvalidState]) or req.From is not
// one of its steps.
func (c *Client) Resubmit(ctx context.Context, id string, req *ResubmitRequest) (*Instance, error) {
	if req == nil {
		req = &ResubmitRequest{}
	}
	var res Instance
	if err := c.doJSON(ctx, http.MethodPost, "/api/v1/instances/"+url.PathEscape(id)+"/resubmit", req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Cancel cancels an instance that has not ended and returns it.
// Errors: [ordotype.ErrNotFound]; [ordotype.ErrInvalid] when it has ended
// ([CodeInvalidState]).
func (c *Client) Cancel(ctx context.Context, id string, req *CancelRequest) (*Instance, error) {
	if req == nil {
		req = &CancelRequest{}
	}
	var res Instance
	if err := c.doJSON(ctx, http.MethodPost, "/api/v1/instances/"+url.PathEscape(id)+"/cancel", req, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// Ready returns nil when the server answers /readyz with 200: it is up and
// its store answers.
func (c *Client) Ready(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/readyz", nil, "", nil, nil)
	return err
}

func (c *Client) doJSON(ctx context.Context, method, path string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("ordoclient: encoding request: %w", err)
	}
	_, err = c.do(ctx, method, path, nil, "application/json", data, out)
	return err
}

// do sends a request and decodes a 2xx answer into out (when not nil). It
// returns the status, and an [*Error] for any other answer.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, contentType string, body []byte, out any) (int, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, fmt.Errorf("ordoclient: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("ordoclient: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("ordoclient: %s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, decodeError(resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("ordoclient: %s %s: decoding answer: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

func decodeError(status int, data []byte) error {
	var er ErrorResponse
	if err := json.Unmarshal(data, &er); err == nil && er.Error != nil && er.Error.Message != "" {
		er.Error.Status = status
		return er.Error
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &Error{Status: status, Message: msg}
}

// IsCode reports whether err is an [*Error] with the given code.
func IsCode(err error, code Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
