package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client talks to one switchboard server. It is safe for concurrent use.
type Client struct {
	base *url.URL
	hc   *http.Client
}

// Option configures a [Client].
type Option func(*Client)

// WithHTTPClient makes the Client send its requests, and dial its
// WebSockets, with hc instead of http.DefaultClient.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// New returns a Client for the server at baseURL, e.g.
// "http://localhost:8080" or "https://chat.example.com/prefix".
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http://host[:port] or https://host[:port]", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	c := &Client{base: u, hc: http.DefaultClient}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// url returns the address of a path under the base URL. Segments are
// escaped one by one.
func (c *Client) url(q url.Values, segments ...string) string {
	for i, s := range segments {
		segments[i] = url.PathEscape(s)
	}
	u := c.base.JoinPath(segments...)
	u.RawQuery = q.Encode()
	return u.String()
}

// wsURL is the address of the WebSocket endpoint for device. The device
// id in the query is the routing key of NGINX in front of several nodes
// (deploy/nginx), which keeps each device on one node; the node refuses one
// that is not the token's device.
func (c *Client) wsURL(device string) string {
	u := c.base.JoinPath("v1", "ws")
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	if device != "" {
		u.RawQuery = url.Values{"device": {device}}.Encode()
	}
	return u.String()
}

// do sends in (if not nil) as JSON and decodes a 2xx answer into out (if
// not nil). Any other answer becomes an *Error.
func (c *Client) do(ctx context.Context, method, url, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("client: encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s %s: %w", method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("client: %s %s: decoding answer: %w", method, req.URL.Path, err)
	}
	return nil
}

// errUnbound is returned by the methods of a Session that was not made by
// Login or Resume.
var errUnbound = errors.New("client: session has no Client; use Client.Login or Client.Resume")
