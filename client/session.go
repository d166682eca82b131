package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// Devices lists the active devices of a user, oldest first: the recipients
// to encrypt for. An unknown user is an *Error with Code "not_found".
func (s *Session) Devices(ctx context.Context, userID string) ([]Device, error) {
	if s.client == nil {
		return nil, errUnbound
	}
	var out struct {
		Devices []Device `json:"devices"`
	}
	u := s.client.url(nil, "v1", "users", userID, "devices")
	if err := s.client.do(ctx, http.MethodGet, u, s.Token, nil, &out); err != nil {
		return nil, err
	}
	return out.Devices, nil
}

// RevokeDevice revokes one of the session user's own devices (this one
// included): DELETE /v1/devices/{id}. From then on the device's token is
// refused, its live socket is closed with [CloseDeviceRevoked] and it
// receives nothing more. Another user's device, an unknown one or one
// already revoked is an *Error with Code [CodeNotFound] (status 404).
func (s *Session) RevokeDevice(ctx context.Context, deviceID string) error {
	if s.client == nil {
		return errUnbound
	}
	u := s.client.url(nil, "v1", "devices", deviceID)
	return s.client.do(ctx, http.MethodDelete, u, s.Token, nil, nil)
}

// CreateConversation creates a conversation of kind [KindDirect] or
// [KindGroup] and returns its id. The caller is always a member; title may
// be empty.
func (s *Session) CreateConversation(ctx context.Context, kind string, members []string, title string) (string, error) {
	if s.client == nil {
		return "", errUnbound
	}
	if members == nil {
		members = []string{}
	}
	in := struct {
		Kind    string   `json:"kind"`
		Members []string `json:"members"`
		Title   string   `json:"title,omitempty"`
	}{kind, members, title}
	var out struct {
		ID string `json:"conversation_id"`
	}
	u := s.client.url(nil, "v1", "conversations")
	if err := s.client.do(ctx, http.MethodPost, u, s.Token, in, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// Conversations lists all the caller's conversations, by id, reading them
// a page at a time (see [Session.ConversationsPage]).
func (s *Session) Conversations(ctx context.Context) ([]Conversation, error) {
	var all []Conversation
	after := ""
	for {
		page, next, err := s.ConversationsPage(ctx, after, 0)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if next == "" {
			return all, nil
		}
		after = next
	}
}

// ConversationsPage lists one page of the caller's conversations, by id:
// those after the cursor after ("" for the first page), at most limit
// (0 means the server's default, 100; the server caps it at 500). next is
// the cursor of the following page, "" when this page is the last.
func (s *Session) ConversationsPage(ctx context.Context, after string, limit int) (page []Conversation, next string, err error) {
	if s.client == nil {
		return nil, "", errUnbound
	}
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Conversations []Conversation `json:"conversations"`
		Next          string         `json:"next"`
	}
	u := s.client.url(q, "v1", "conversations")
	if err := s.client.do(ctx, http.MethodGet, u, s.Token, nil, &out); err != nil {
		return nil, "", err
	}
	return out.Conversations, out.Next, nil
}

// Messages returns the messages of a conversation with seq above after that
// this device receives, oldest first, at most limit of them (limit 0 means
// the server's default, 100; the server caps it at 1000) and at most the
// server's page size in bytes (4 MiB of ciphertext by default): a page may
// be shorter than limit with more to come, which [Session.MessagesPage]
// says. History does not go through a [Conn]'s deduplication.
func (s *Session) Messages(ctx context.Context, conversationID string, after int64, limit int) ([]Message, error) {
	msgs, _, err := s.MessagesPage(ctx, conversationID, after, limit)
	return msgs, err
}

// MessagesPage is [Session.Messages] with the seq to continue after:
// nextAfter is set when the page stopped at its count or byte bound (there
// may be more: ask again with after = nextAfter), 0 when it reached the
// newest message.
func (s *Session) MessagesPage(ctx context.Context, conversationID string, after int64, limit int) (msgs []Message, nextAfter int64, err error) {
	if s.client == nil {
		return nil, 0, errUnbound
	}
	q := url.Values{}
	if after != 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Messages  []serverFrame `json:"messages"`
		NextAfter int64         `json:"next_after"`
	}
	u := s.client.url(q, "v1", "conversations", conversationID, "messages")
	if err := s.client.do(ctx, http.MethodGet, u, s.Token, nil, &out); err != nil {
		return nil, 0, err
	}
	msgs = make([]Message, len(out.Messages))
	for i := range out.Messages {
		msgs[i] = out.Messages[i].message()
	}
	return msgs, out.NextAfter, nil
}

// Block blocks a user: from then on that user cannot start a direct
// conversation with the caller, add the caller to a group, or send in a
// direct conversation with the caller (each an *Error with Code
// [CodeBlocked]). Blocking a blocked user again changes nothing; an
// unknown user is [CodeNotFound].
func (s *Session) Block(ctx context.Context, userID string) error {
	if s.client == nil {
		return errUnbound
	}
	return s.client.do(ctx, http.MethodPost, s.client.url(nil, "v1", "blocks", userID), s.Token, nil, nil)
}

// Unblock lifts the caller's block of a user, if there is one.
func (s *Session) Unblock(ctx context.Context, userID string) error {
	if s.client == nil {
		return errUnbound
	}
	return s.client.do(ctx, http.MethodDelete, s.client.url(nil, "v1", "blocks", userID), s.Token, nil, nil)
}

// SendHTTP sends a message without a socket. It answers like [Conn.Send]:
// the receipt, the first receipt again for an ID this device already sent,
// or an *Error (with the HTTP status) when nothing was stored.
func (s *Session) SendHTTP(ctx context.Context, req SendRequest) (Sent, error) {
	if s.client == nil {
		return Sent{}, errUnbound
	}
	if err := req.prepare(); err != nil {
		return Sent{}, err
	}
	var out serverFrame
	u := s.client.url(nil, "v1", "conversations", req.Conversation, "messages")
	if err := s.client.do(ctx, http.MethodPost, u, s.Token, newSendFrame("", req), &out); err != nil {
		if e, ok := err.(*Error); ok && e.ID == "" {
			e.ID = req.ID
		}
		return Sent{}, err
	}
	return out.sent(), nil
}
