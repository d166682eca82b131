package wire

import (
	"encoding/json"
	"time"
)

// Frame types a client sends.
const (
	TypeSend = "send" // a message to a conversation: ClientFrame with ID, Conversation and one of the payloads
	TypeAck  = "ack"  // everything up to Seq in Conversation is safely received
	TypePing = "ping" // answered with pong after every frame before it
)

// Frame types a node sends.
const (
	TypeSent           = "sent"            // a send is committed: Sent
	TypeMessage        = "message"         // one message for this device: Message
	TypeSynced         = "synced"          // the backlog is replayed
	TypeDevicesChanged = "devices_changed" // a user's devices changed: DevicesChanged
	TypeError          = "error"           // a frame was refused: Error
	TypePong           = "pong"            // the answer to ping
)

// ClientTypes and ServerTypes list the frame types of each side.
var (
	ClientTypes = []string{TypeSend, TypeAck, TypePing, TypeCall, TypePresenceSubscribe, TypeTyping, TypeRead}
	ServerTypes = []string{TypeSent, TypeMessage, TypeSynced, TypeDevicesChanged, TypeError, TypePong, TypeEvent, TypeCall,
		TypePresence, TypeTyping, TypeReceipt}
)

// ClientFrame is any client frame; which fields matter depends on Type.
// Without Type it is also the body of POST /v1/conversations/{id}/messages.
// DecodeClientFrame decodes it by hand on the socket: a new field needs a
// case there too (TestDecodeClientFrameKnowsEveryField). The omit options
// matter only to encoders (the SDK); omitzero keeps an empty but set
// Ciphertexts or Ciphertext on the wire, so the server judges it.
type ClientFrame struct {
	Type         string            `json:"type,omitempty"`
	ID           string            `json:"id,omitempty"`
	Conversation string            `json:"conversation,omitempty"`
	Ciphertexts  map[string][]byte `json:"ciphertexts,omitzero"`
	Ciphertext   []byte            `json:"ciphertext,omitzero"`
	Plaintext    []byte            `json:"plaintext,omitzero"`
	Seq          *int64            `json:"seq,omitempty"`
	// Attachments are the ids of end-to-end-encrypted attachments the
	// message carries (POST /v1/attachments); the send grants their
	// readers the conversation's members.
	Attachments []string `json:"attachments,omitempty"`
}

// Head is a client frame's type and id, decoded first so that an error can
// name the frame's id even when the rest is malformed.
type Head struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Sent answers a send once it is committed; without Type it is the HTTP
// answer to POST /v1/conversations/{id}/messages. AppendSent encodes it
// without reflection.
type Sent struct {
	Type         string `json:"type,omitempty"` // empty in HTTP answers
	ID           string `json:"id"`
	Conversation string `json:"conversation"`
	Seq          int64  `json:"seq"`
	TS           Time   `json:"ts"`
}

// Message is one message for one device, with that device's ciphertext;
// without Type it is a message as GET .../messages lists it. AppendMessage
// encodes it without reflection.
type Message struct {
	Type         string `json:"type,omitempty"` // empty in HTTP answers
	Conversation string `json:"conversation"`
	Seq          int64  `json:"seq"`
	Sender       Sender `json:"sender"`
	TS           Time   `json:"ts"`
	Ciphertext   []byte `json:"ciphertext"`
}

// Sender is the device that sent a message.
type Sender struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
}

// DevicesChanged says that a user logged in a new device or revoked one.
type DevicesChanged struct {
	Type   string `json:"type"`
	UserID string `json:"user_id"`
}

// Error refuses a client frame; the socket stays open.
type Error struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"` // the failing frame's id, when it had one
	Code    string `json:"code"`         // one of the Code constants
	Message string `json:"message"`      // for humans
	// Missing and Extra are set for devices_mismatch: both present, empty
	// when empty (omitzero drops only a nil slice).
	Missing []string `json:"missing,omitzero"`
	Extra   []string `json:"extra,omitzero"`
	// CallID is set when the refused frame was about a call (wire/call.go).
	CallID string `json:"call_id,omitempty"`
	// RetryAfterMS is set for rate_limited: milliseconds until a retry can succeed.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

// ServerFrame is the union of the server's frames, for a client that
// decodes them with encoding/json. Without Type it also decodes a listed
// message and an HTTP send answer.
type ServerFrame struct {
	Type         string    `json:"type"`
	ID           string    `json:"id"`
	Conversation string    `json:"conversation"`
	Seq          int64     `json:"seq"`
	TS           time.Time `json:"ts"`
	Sender       Sender    `json:"sender"`
	Ciphertext   []byte    `json:"ciphertext"`
	UserID       string    `json:"user_id"` // devices_changed
	Code         string    `json:"code"`
	Message      string    `json:"message"`
	Missing      []string  `json:"missing"`
	Extra        []string  `json:"extra"`
	RetryAfterMS int64     `json:"retry_after_ms"` // rate_limited
	Event        *Event    `json:"event"`          // event (event.go)
	// call (wire/call.go), and error frames about a call (CallID)
	CallID  string          `json:"call_id"`
	Action  string          `json:"action"`
	From    Sender          `json:"from"`
	Payload json.RawMessage `json:"payload"`
}

// TimeLayout is how every time is written on the wire: RFC 3339 in UTC
// with exactly three fractional digits.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Time marshals as TimeLayout, so every time on the wire has the same shape.
type Time time.Time

// MarshalJSON writes t as a TimeLayout string.
func (t Time) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 32), '"')
	b = AppendTime(b, time.Time(t))
	return append(b, '"'), nil
}
