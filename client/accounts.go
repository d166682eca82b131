package client

import (
	"context"
	"net/http"
	"time"
)

// Session is a logged-in device: its ids and its bearer token. Its methods
// call the server with the token. A Session is made by [Client.Login], or
// by [Client.Resume] from saved fields; it is safe for concurrent use.
type Session struct {
	UserID    string    `json:"user_id"`
	DeviceID  string    `json:"device_id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`

	client *Client
}

// CreateAccount registers a user and returns its id. A taken name is an
// *Error with Code "username_taken".
func (c *Client) CreateAccount(ctx context.Context, username, password string) (userID string, err error) {
	in := struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}{username, password}
	var out struct {
		UserID string `json:"user_id"`
	}
	if err := c.do(ctx, http.MethodPost, c.url(nil, "v1", "accounts"), "", in, &out); err != nil {
		return "", err
	}
	return out.UserID, nil
}

// Login logs in and creates a new device described by dev; the returned
// Session's token is bound to that device. Wrong credentials are an *Error
// with Code "bad_credentials".
func (c *Client) Login(ctx context.Context, username, password string, dev DeviceInfo) (*Session, error) {
	in := struct {
		Username string     `json:"username"`
		Password string     `json:"password"`
		Device   DeviceInfo `json:"device"`
	}{username, password, dev}
	s := &Session{client: c}
	if err := c.do(ctx, http.MethodPost, c.url(nil, "v1", "sessions"), "", in, s); err != nil {
		return nil, err
	}
	return s, nil
}

// Resume returns a copy of s bound to c, for a session saved from an earlier
// Login (only Token is needed to call the server).
func (c *Client) Resume(s Session) *Session {
	s.client = c
	return &s
}
