package client

import (
	"context"
	"net/http"

	"github.com/switchboard-chat/switchboard/wire"
)

// Event kinds ([Event.Kind]).
const (
	EventMemberAdded   = wire.EventMemberAdded   // UserID was added by By
	EventMemberRemoved = wire.EventMemberRemoved // UserID was removed by By
	EventMemberLeft    = wire.EventMemberLeft    // UserID left
	EventRoleChanged   = wire.EventRoleChanged   // By made UserID's role Role
	EventCallMissed    = wire.EventCallMissed    // UserID missed By's call CallID
)

// Member roles ([Session.SetRole], [Conversation.Admins]).
const (
	RoleAdmin  = wire.RoleAdmin
	RoleMember = wire.RoleMember
)

// Event is a system event in a conversation: a membership change or a
// missed call. It has a seq like a message and arrives in order with the
// messages, on [Conn.Messages] and in [Session.Messages], as a [Message]
// whose Event is set and whose Ciphertext is nil; acks cover it as any
// message.
type Event struct {
	Kind   string // one of the Event… constants
	UserID string // whom it is about
	By     string // who did it
	Role   string // for EventRoleChanged: RoleAdmin or RoleMember
	CallID string // for EventCallMissed
}

func newEvent(e *wire.Event) *Event {
	if e == nil {
		return nil
	}
	return &Event{Kind: e.Kind, UserID: e.UserID, By: e.By, Role: e.Role, CallID: e.CallID}
}

// AddMembers adds users to a group the caller is an admin of, and returns
// the seq of the last member_added event (one event per added user; users
// already members are skipped). Errors: [CodeNotAdmin], [CodeNotMember],
// [CodeNotGroup] for a direct conversation, [CodeInvalidConversation] for
// an unknown user or too many members, [CodeNoSuchConversation].
func (s *Session) AddMembers(ctx context.Context, conversationID string, userIDs ...string) (int64, error) {
	return s.changeMembers(ctx, http.MethodPost, []string{"v1", "conversations", conversationID, "members"},
		wire.AddMembers{UserIDs: userIDs})
}

// RemoveMember removes a member from a group the caller is an admin of
// and returns the seq of the member_removed event. The removed user's
// devices receive that event, then nothing more of the group.
func (s *Session) RemoveMember(ctx context.Context, conversationID, userID string) (int64, error) {
	return s.changeMembers(ctx, http.MethodDelete, []string{"v1", "conversations", conversationID, "members", userID}, nil)
}

// Leave leaves a group (any member may) and returns the seq of the
// member_left event. When the last admin leaves, another member becomes
// admin.
func (s *Session) Leave(ctx context.Context, conversationID string) (int64, error) {
	return s.RemoveMember(ctx, conversationID, s.UserID)
}

// SetRole makes a member of a group [RoleAdmin] or [RoleMember] (the
// caller must be an admin) and returns the seq of the role_changed event.
func (s *Session) SetRole(ctx context.Context, conversationID, userID, role string) (int64, error) {
	return s.changeMembers(ctx, http.MethodPatch, []string{"v1", "conversations", conversationID, "members", userID},
		wire.SetRole{Role: role})
}

func (s *Session) changeMembers(ctx context.Context, method string, path []string, body any) (int64, error) {
	if s.client == nil {
		return 0, errUnbound
	}
	var out wire.MembersChanged
	if err := s.client.do(ctx, method, s.client.url(nil, path...), s.Token, body, &out); err != nil {
		return 0, err
	}
	return out.Seq, nil
}
