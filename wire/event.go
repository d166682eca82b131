package wire

import (
	"strconv"
	"time"
)

// TypeEvent is the frame of a system event in a conversation: a membership
// change or a missed call. It takes a seq like a message (ordered with the
// messages around it, acked, replayed at sync, listed by history) and
// carries no ciphertext.
const TypeEvent = "event"

// Event kinds.
const (
	EventMemberAdded   = "member_added"   // UserID was added by By
	EventMemberRemoved = "member_removed" // UserID was removed by By (an admin)
	EventMemberLeft    = "member_left"    // UserID left (By is UserID)
	EventRoleChanged   = "role_changed"   // By made UserID's role Role
	EventCallMissed    = "call_missed"    // UserID did not answer By's call CallID
)

// EventKinds lists the event kinds, in the order above.
var EventKinds = []string{EventMemberAdded, EventMemberRemoved, EventMemberLeft, EventRoleChanged, EventCallMissed}

// Member roles: a group's admins add and remove members and change roles;
// its creator is its first admin.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// Event is what happened; the body of an event frame's "event".
type Event struct {
	Kind   string `json:"kind"`
	UserID string `json:"user_id"`
	By     string `json:"by"`
	Role   string `json:"role,omitempty"`    // role_changed
	CallID string `json:"call_id,omitempty"` // call_missed
}

// EventFrame is an event for one device; without Type it is an event as
// GET .../messages lists it (an item with "event" and no ciphertext).
// Event holds the event's JSON as stored (Event, encoded once at commit).
type EventFrame struct {
	Type         string   `json:"type,omitempty"`
	Conversation string   `json:"conversation"`
	Seq          int64    `json:"seq"`
	TS           Time     `json:"ts"`
	Event        RawEvent `json:"event"`
}

// RawEvent is an encoded Event, written as is.
type RawEvent []byte

// MarshalJSON writes e unchanged (null when empty).
func (e RawEvent) MarshalJSON() ([]byte, error) {
	if len(e) == 0 {
		return []byte("null"), nil
	}
	return e, nil
}

// AppendEvent appends the event frame of a stored event (its JSON ev) at
// seq in conv, with "type":"event".
func AppendEvent(b []byte, conv string, seq int64, ts time.Time, ev []byte) []byte {
	b = append(b, `{"type":"`+TypeEvent+`","conversation":`...)
	b = AppendString(b, conv)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"ts":"`...)
	b = AppendTime(b, ts)
	b = append(b, `","event":`...)
	b = append(b, ev...)
	return append(b, '}')
}

// AddMembers is the body of POST /v1/conversations/{id}/members.
type AddMembers struct {
	UserIDs []string `json:"user_ids"`
}

// SetRole is the body of PATCH /v1/conversations/{id}/members/{user_id}.
type SetRole struct {
	Role string `json:"role"`
}

// MembersChanged answers a membership change: the seq of its (last) event.
type MembersChanged struct {
	Seq int64 `json:"seq"`
}
