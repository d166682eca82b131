package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"testing"
	"time"
)

// handler is one fake endpoint: it checks the request and answers.
type handler func(t *testing.T, w http.ResponseWriter, r *http.Request)

// jsonBody decodes the request body into a generic map.
func jsonBody(t *testing.T, r *http.Request) map[string]any {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var m map[string]any
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		t.Errorf("request body: %v", err)
	}
	return m
}

func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func wantToken(t *testing.T, r *http.Request) {
	t.Helper()
	if got := r.Header.Get("Authorization"); got != "Bearer "+fakeToken {
		t.Errorf("Authorization = %q", got)
	}
}

var (
	t0    = time.Date(2026, 11, 28, 12, 0, 0, 123e6, time.UTC)
	t0Str = "2026-11-28T12:00:00.123Z"
)

func TestCalls(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		handle  handler
		call    func(ctx context.Context, c *Client, s *Session) (any, error)
		want    any
	}{
		{
			name:    "CreateAccount posts the name and password and returns the user id",
			pattern: "POST /v1/accounts",
			handle: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				if got := jsonBody(t, r); !reflect.DeepEqual(got, map[string]any{"username": "alice", "password": "correct horse"}) {
					t.Errorf("body = %v", got)
				}
				if r.Header.Get("Authorization") != "" {
					t.Error("token sent to an open endpoint")
				}
				reply(w, 201, `{"user_id":"usr_1"}`)
			},
			call: func(ctx context.Context, c *Client, _ *Session) (any, error) {
				return c.CreateAccount(ctx, "alice", "correct horse")
			},
			want: "usr_1",
		},
		{
			name:    "Login sends the device keys as base64 and returns the session",
			pattern: "POST /v1/sessions",
			handle: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				want := map[string]any{"username": "alice", "password": "correct horse", "device": map[string]any{
					"name": "phone", "kem": "x25519", "public_key": "AQI=", "signing_key": "AwQ="}}
				if got := jsonBody(t, r); !reflect.DeepEqual(got, want) {
					t.Errorf("body = %v", got)
				}
				reply(w, 201, `{"user_id":"usr_1","device_id":"dev_1","token":"tok","expires_at":"`+t0Str+`"}`)
			},
			call: func(ctx context.Context, c *Client, _ *Session) (any, error) {
				s, err := c.Login(ctx, "alice", "correct horse", DeviceInfo{Name: "phone", KEM: KEMX25519, PublicKey: []byte{1, 2}, SigningKey: []byte{3, 4}})
				if err != nil {
					return nil, err
				}
				if s.client != c {
					t.Error("session not bound to its Client")
				}
				return Session{UserID: s.UserID, DeviceID: s.DeviceID, Token: s.Token, ExpiresAt: s.ExpiresAt}, nil
			},
			want: Session{UserID: "usr_1", DeviceID: "dev_1", Token: "tok", ExpiresAt: t0},
		},
		{
			name:    "Devices sends the token and decodes keys and times",
			pattern: "GET /v1/users/{id}/devices",
			handle: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				wantToken(t, r)
				if id := r.PathValue("id"); id != "usr_2" {
					t.Errorf("user id %q", id)
				}
				reply(w, 200, `{"devices":[{"device_id":"dev_2","name":"laptop","kem":"x25519","public_key":"AQI=","signing_key":"AwQ=","created_at":"`+t0Str+`"}]}`)
			},
			call: func(ctx context.Context, _ *Client, s *Session) (any, error) { return s.Devices(ctx, "usr_2") },
			want: []Device{{ID: "dev_2", Name: "laptop", KEM: "x25519", PublicKey: []byte{1, 2}, SigningKey: []byte{3, 4}, CreatedAt: t0}},
		},
		{
			name:    "CreateConversation posts kind, members and title",
			pattern: "POST /v1/conversations",
			handle: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				wantToken(t, r)
				want := map[string]any{"kind": "group", "members": []any{"usr_2", "usr_3"}, "title": "team"}
				if got := jsonBody(t, r); !reflect.DeepEqual(got, want) {
					t.Errorf("body = %v", got)
				}
				reply(w, 201, `{"conversation_id":"cnv_1"}`)
			},
			call: func(ctx context.Context, _ *Client, s *Session) (any, error) {
				return s.CreateConversation(ctx, KindGroup, []string{"usr_2", "usr_3"}, "team")
			},
			want: "cnv_1",
		},
		{
			name:    "Conversations decodes the list",
			pattern: "GET /v1/conversations",
			handle: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				wantToken(t, r)
				reply(w, 200, `{"conversations":[{"conversation_id":"cnv_1","kind":"direct","title":"","members":["usr_1","usr_2"],"head_seq":7,"created_at":"`+t0Str+`"}]}`)
			},
			call: func(ctx context.Context, _ *Client, s *Session) (any, error) { return s.Conversations(ctx) },
			want: []Conversation{{ID: "cnv_1", Kind: "direct", Members: []string{"usr_1", "usr_2"}, HeadSeq: 7, CreatedAt: t0}},
		},
		{
			name:    "Messages passes after and limit and decodes senders",
			pattern: "GET /v1/conversations/{id}/messages",
			handle: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				wantToken(t, r)
				if got := r.URL.Query(); r.PathValue("id") != "cnv_1" || got.Get("after") != "5" || got.Get("limit") != "2" {
					t.Errorf("path %s query %v", r.URL.Path, got)
				}
				reply(w, 200, `{"messages":[{"conversation":"cnv_1","seq":6,"sender":{"user_id":"usr_2","device_id":"dev_2"},"ts":"`+t0Str+`","ciphertext":"aGk="}]}`)
			},
			call: func(ctx context.Context, _ *Client, s *Session) (any, error) { return s.Messages(ctx, "cnv_1", 5, 2) },
			want: []Message{{Conversation: "cnv_1", Seq: 6, SenderUserID: "usr_2", SenderDeviceID: "dev_2", TS: t0, Ciphertext: []byte("hi")}},
		},
		{
			name:    "Conversations follows next through every page",
			pattern: "GET /v1/conversations",
			handle: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				wantToken(t, r)
				switch r.URL.Query().Get("after") {
				case "":
					reply(w, 200, `{"conversations":[{"conversation_id":"cnv_1","kind":"direct","members":["usr_1"],"created_at":"`+t0Str+`"}],"next":"cnv_1"}`)
				case "cnv_1":
					reply(w, 200, `{"conversations":[{"conversation_id":"cnv_2","kind":"group","members":["usr_1"],"created_at":"`+t0Str+`"}]}`)
				default:
					t.Errorf("after = %q", r.URL.Query().Get("after"))
				}
			},
			call: func(ctx context.Context, _ *Client, s *Session) (any, error) { return s.Conversations(ctx) },
			want: []Conversation{{ID: "cnv_1", Kind: "direct", Members: []string{"usr_1"}, CreatedAt: t0},
				{ID: "cnv_2", Kind: "group", Members: []string{"usr_1"}, CreatedAt: t0}},
		},
		{
			name:    "MessagesPage returns next_after",
			pattern: "GET /v1/conversations/{id}/messages",
			handle: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				reply(w, 200, `{"messages":[{"conversation":"cnv_1","seq":6,"sender":{"user_id":"usr_2","device_id":"dev_2"},"ts":"`+t0Str+`","ciphertext":"aGk="}],"next_after":6}`)
			},
			call: func(ctx context.Context, _ *Client, s *Session) (any, error) {
				_, next, err := s.MessagesPage(ctx, "cnv_1", 5, 1)
				return next, err
			},
			want: int64(6),
		},
		{
			name:    "Block posts to the user's block",
			pattern: "POST /v1/blocks/{user}",
			handle: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				wantToken(t, r)
				if r.PathValue("user") != "usr_2" {
					t.Errorf("path %s", r.URL.Path)
				}
				w.WriteHeader(http.StatusNoContent)
			},
			call: func(ctx context.Context, _ *Client, s *Session) (any, error) { return nil, s.Block(ctx, "usr_2") },
		},
		{
			name:    "Unblock deletes the user's block",
			pattern: "DELETE /v1/blocks/{user}",
			handle: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				wantToken(t, r)
				w.WriteHeader(http.StatusNoContent)
			},
			call: func(ctx context.Context, _ *Client, s *Session) (any, error) { return nil, s.Unblock(ctx, "usr_2") },
		},
		{
			name:    "SendHTTP posts a send frame without type to the conversation",
			pattern: "POST /v1/conversations/{id}/messages",
			handle: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				wantToken(t, r)
				want := map[string]any{"id": "m1", "conversation": "cnv_1", "ciphertexts": map[string]any{"dev_2": "aGk="}}
				if got := jsonBody(t, r); r.PathValue("id") != "cnv_1" || !reflect.DeepEqual(got, want) {
					t.Errorf("path %s body %v", r.URL.Path, got)
				}
				reply(w, 201, `{"id":"m1","conversation":"cnv_1","seq":3,"ts":"`+t0Str+`"}`)
			},
			call: func(ctx context.Context, _ *Client, s *Session) (any, error) {
				return s.SendHTTP(ctx, SendRequest{ID: "m1", Conversation: "cnv_1", Ciphertexts: map[string][]byte{"dev_2": []byte("hi")}})
			},
			want: Sent{ID: "m1", Conversation: "cnv_1", Seq: 3, TS: t0},
		},
		{
			name:    "RevokeDevice deletes the device with the session's token",
			pattern: "DELETE /v1/devices/{id}",
			handle: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				wantToken(t, r)
				if r.PathValue("id") != "dev_2" {
					t.Errorf("path %s", r.URL.Path)
				}
				w.WriteHeader(http.StatusNoContent)
			},
			call: func(ctx context.Context, _ *Client, s *Session) (any, error) {
				return nil, s.RevokeDevice(ctx, "dev_2")
			},
			want: nil,
		},
		{
			name:    "SendHTTP takes the 200 of a repeated id as the receipt",
			pattern: "POST /v1/conversations/{id}/messages",
			handle: func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				reply(w, 200, `{"id":"m1","conversation":"cnv_1","seq":3,"ts":"`+t0Str+`"}`)
			},
			call: func(ctx context.Context, _ *Client, s *Session) (any, error) {
				return s.SendHTTP(ctx, SendRequest{ID: "m1", Conversation: "cnv_1", Ciphertext: []byte("hi")})
			},
			want: Sent{ID: "m1", Conversation: "cnv_1", Seq: 3, TS: t0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.mux.HandleFunc(tt.pattern, func(w http.ResponseWriter, r *http.Request) { tt.handle(t, w, r) })
			s := f.session(fakeToken)
			got, err := tt.call(ctxFor(t, 5*time.Second), s.client, s)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestRefusalsBecomeErrors(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		header      http.Header
		body        string
		want        *Error
	}{
		{
			name:        "a problem document becomes an *Error with its status, code and detail",
			status:      409,
			contentType: "application/problem+json",
			body:        `{"type":"about:blank","title":"Conflict","status":409,"code":"username_taken","detail":"username is taken"}`,
			want:        &Error{Status: 409, Code: "username_taken", Detail: "username is taken", ID: "m1"},
		},
		{
			name:        "devices_mismatch carries missing and extra, and the send id",
			status:      409,
			contentType: "application/problem+json",
			body:        `{"title":"Conflict","status":409,"code":"devices_mismatch","detail":"d","missing":["dev_a"],"extra":["dev_b","dev_c"]}`,
			want:        &Error{Status: 409, Code: "devices_mismatch", Detail: "d", Missing: []string{"dev_a"}, Extra: []string{"dev_b", "dev_c"}, ID: "m1"},
		},
		{
			name:        "rate_limited carries Retry-After",
			status:      429,
			contentType: "application/problem+json",
			header:      http.Header{"Retry-After": {"3"}},
			body:        `{"title":"Too Many Requests","status":429,"code":"rate_limited","detail":"slow down"}`,
			want:        &Error{Status: 429, Code: "rate_limited", Detail: "slow down", RetryAfter: 3 * time.Second, ID: "m1"},
		},
		{
			name:        "a problem without detail falls back to its title",
			status:      401,
			contentType: "application/problem+json; charset=utf-8",
			body:        `{"title":"Unauthorized","status":401,"code":"unauthorized"}`,
			want:        &Error{Status: 401, Code: "unauthorized", Detail: "Unauthorized", ID: "m1"},
		},
		{
			name:        "a page that is not a problem document keeps the status",
			status:      502,
			contentType: "text/html",
			body:        `<html>bad gateway</html>`,
			want:        &Error{Status: 502, Detail: "Bad Gateway", ID: "m1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.mux.HandleFunc("POST /v1/conversations/{id}/messages", func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header()[k] = v
				}
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, err := f.session(fakeToken).SendHTTP(ctxFor(t, 5*time.Second), SendRequest{ID: "m1", Conversation: "cnv_1", Ciphertext: []byte("x")})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if !reflect.DeepEqual(e, tt.want) {
				t.Fatalf("err = %#v\nwant %#v", e, tt.want)
			}
		})
	}
}

func TestErrorMessagesReadWell(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"an HTTP refusal shows status, code and detail", &Error{Status: 409, Code: "username_taken", Detail: "username is taken"},
			"switchboard: 409 username_taken: username is taken"},
		{"an error frame shows code, message and the device lists", &Error{Code: "devices_mismatch", Detail: "mismatch", Missing: []string{"dev_a"}, Extra: []string{"dev_b"}},
			"switchboard: devices_mismatch: mismatch (missing [dev_a]) (extra [dev_b])"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewChecksTheBaseURL(t *testing.T) {
	tests := []struct {
		name    string
		base    string
		wantErr bool
		wantWS  string
	}{
		{"an http URL is accepted and its socket is ws", "http://localhost:8080", false, "ws://localhost:8080/v1/ws"},
		{"an https URL with a path prefix keeps the prefix and uses wss", "https://chat.example.com/sb/", false, "wss://chat.example.com/sb/v1/ws"},
		{"a ws URL is refused", "ws://localhost:8080", true, ""},
		{"a URL without a host is refused", "http://", true, ""},
		{"a malformed URL is refused", "http://[::1", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.base)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && c.wsURL("") != tt.wantWS {
				t.Fatalf("wsURL = %q, want %q", c.wsURL(""), tt.wantWS)
			}
		})
	}
}

func TestTheSocketURLCarriesTheDevice(t *testing.T) {
	c, err := New("https://chat.example.com/sb/")
	if err != nil {
		t.Fatal(err)
	}
	// NGINX in front of several nodes routes on it (deploy/nginx).
	if got, want := c.wsURL("dev_a&b"), "wss://chat.example.com/sb/v1/ws?device=dev_a%26b"; got != want {
		t.Fatalf("wsURL = %q, want %q", got, want)
	}
}

func TestPathSegmentsAreEscaped(t *testing.T) {
	c, err := New("http://h/prefix")
	if err != nil {
		t.Fatal(err)
	}
	got := c.url(nil, "v1", "users", "usr/../x y", "devices")
	if want := "http://h/prefix/v1/users/usr%2F..%2Fx%20y/devices"; got != want {
		t.Fatalf("url = %q, want %q", got, want)
	}
}

func TestASessionWithoutAClientSaysSo(t *testing.T) {
	var s Session
	if _, err := s.Conversations(context.Background()); !errors.Is(err, errUnbound) {
		t.Fatalf("err = %v", err)
	}
	if _, err := Connect(context.Background(), &s, ConnOptions{}); !errors.Is(err, errUnbound) {
		t.Fatalf("Connect err = %v", err)
	}
}
