package wire

import "time"

// Presence, typing and read receipts (issue 19): ephemeral frames, but for
// read, whose mark is stored. docs/protocol.md documents each.

// Frame types a client sends about presence, typing and reading.
const (
	TypePresenceSubscribe = "presence_subscribe" // sets the socket's watched users: PresenceSubscribe
	TypeTyping            = "typing"             // client: TypingStart or TypingStop in a conversation; server: Typing
	TypeRead              = "read"               // the user has read up to Seq: Read
)

// Frame types a node sends about presence and receipts (typing is both ways).
const (
	TypePresence = "presence" // a watched user's presence: Presence
	TypeReceipt  = "receipt"  // a member's delivered or read mark moved: Receipt
)

// Typing states.
const (
	TypingStart = "start"
	TypingStop  = "stop"
)

// MaxWatched is how many users one socket may watch (presence_subscribe).
const MaxWatched = 256

// PresenceSubscribe replaces the socket's watched users. Users who share no
// conversation with the caller are ignored; more than MaxWatched is refused.
type PresenceSubscribe struct {
	Type  string   `json:"type"`
	Users []string `json:"users"`
}

// Presence says whether a watched user is online. LastSeen is when the user
// was last online; it is absent while online and for a user never seen.
type Presence struct {
	Type     string `json:"type,omitempty"` // empty in the HTTP answer
	UserID   string `json:"user_id"`
	Online   bool   `json:"online"`
	LastSeen *Time  `json:"last_seen,omitempty"`
}

// Typing is a typing notice: sent by a client (without UserID) and relayed
// by the node to the other members' devices (with UserID).
type Typing struct {
	Type         string `json:"type"`
	Conversation string `json:"conversation"`
	UserID       string `json:"user_id,omitempty"` // set by the node
	State        string `json:"state"`             // TypingStart or TypingStop
}

// Read says the user has read the conversation up to Seq.
type Read struct {
	Type         string `json:"type"`
	Conversation string `json:"conversation"`
	Seq          int64  `json:"seq"`
}

// Receipt is a member's delivered and read marks in a conversation: the
// highest seq any of the user's devices acked, and the highest the user
// read (0 when hidden: the user, or the device's user, turned receipts
// off). Without Type it is an item of GET /v1/conversations/{id}/receipts.
type Receipt struct {
	Type         string `json:"type,omitempty"`
	Conversation string `json:"conversation,omitempty"`
	UserID       string `json:"user_id"`
	Delivered    int64  `json:"delivered"`
	Read         int64  `json:"read"`
}

// UnmarshalJSON reads a time as the wire writes it (any RFC 3339 time),
// so that clients can decode the frames whose times are Time.
func (t *Time) UnmarshalJSON(b []byte) error {
	var v time.Time
	if err := v.UnmarshalJSON(b); err != nil {
		return err
	}
	*t = Time(v)
	return nil
}
