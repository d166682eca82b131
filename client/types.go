package client

import (
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/switchboard-chat/switchboard/wire"
)

// Key encapsulation mechanisms a device may register (DeviceInfo.KEM).
const (
	KEMX25519         = wire.KEMX25519         // PublicKey is 32 bytes
	KEMMLKEM768X25519 = wire.KEMMLKEM768X25519 // PublicKey is 1216 bytes
)

// Conversation kinds.
const (
	KindDirect = "direct"
	KindGroup  = "group"
)

// DeviceInfo describes the device a [Client.Login] creates. SigningKey is a
// 32-byte Ed25519 public key. The server stores the keys exactly as given.
type DeviceInfo struct {
	Name       string `json:"name"`
	KEM        string `json:"kem"`
	PublicKey  []byte `json:"public_key"`
	SigningKey []byte `json:"signing_key"`
}

// Device is an active device of a user, as listed by [Session.Devices].
type Device struct {
	ID         string    `json:"device_id"`
	Name       string    `json:"name"`
	KEM        string    `json:"kem"`
	PublicKey  []byte    `json:"public_key"`
	SigningKey []byte    `json:"signing_key"`
	CreatedAt  time.Time `json:"created_at"`
}

// Conversation is one of the caller's conversations. HeadSeq is the seq of
// its newest message, 0 when it has none.
type Conversation struct {
	ID        string    `json:"conversation_id"`
	Kind      string    `json:"kind"`
	Title     string    `json:"title"`
	Members   []string  `json:"members"`
	Admins    []string  `json:"admins"` // the members who may change the members (a group's)
	HeadSeq   int64     `json:"head_seq"`
	CreatedAt time.Time `json:"created_at"`
}

// Message is one message for this device, carrying this device's
// ciphertext.
type Message struct {
	Conversation   string
	Seq            int64
	SenderUserID   string
	SenderDeviceID string
	TS             time.Time
	Ciphertext     []byte
	// Event is set for a system event (members.go), which has no
	// Ciphertext; its sender is the device that caused it.
	Event *Event
}

// SendRequest is a message to send. Exactly one of Ciphertexts (one entry
// per recipient device: every active device of every member except the
// sending one) and Ciphertext (one shared ciphertext, for sender-key
// groups) is set; set means non-nil. ID identifies the message for retries:
// the server stores one message per ID and device however often it is sent.
// If ID is empty, Send and SendHTTP pick a random one.
type SendRequest struct {
	ID           string
	Conversation string
	Ciphertexts  map[string][]byte
	Ciphertext   []byte
	// Plaintext asks the server to seal the message for each recipient
	// device (server-assisted mode, for clients that cannot encrypt): the
	// server sees it. Use Secure for end-to-end encryption instead.
	Plaintext []byte
	// Attachments are the ids of attachments the message carries (at most
	// 32; see Session.UploadAttachment): the send lets the conversation's
	// members download them. Their keys belong inside the ciphertext.
	Attachments []string
}

// Sent is the server's receipt: the message is committed with this seq.
type Sent struct {
	ID           string    `json:"id"`
	Conversation string    `json:"conversation"`
	Seq          int64     `json:"seq"`
	TS           time.Time `json:"ts"`
}

// maxIDLen is the protocol's limit on a send id, in bytes.
const maxIDLen = 64

// maxAttachments is the most attachments one message may name (docs/protocol.md).
const maxAttachments = 32

// prepare checks what can be checked locally and fills in a missing ID.
func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (r *SendRequest) prepare() error {
	bad := func(detail string) error {
		return &Error{Code: CodeInvalidMessage, Detail: detail, ID: r.ID}
	}
	switch {
	case r.Conversation == "":
		return bad("no conversation")
	case btoi(r.Ciphertexts != nil)+btoi(r.Ciphertext != nil)+btoi(r.Plaintext != nil) != 1:
		return bad("exactly one of Ciphertexts, Ciphertext and Plaintext must be set")
	case len(r.ID) > maxIDLen:
		return bad("id over 64 bytes")
	case len(r.Attachments) > maxAttachments:
		return bad("more than 32 attachments")
	}
	if r.ID == "" {
		r.ID = newID()
	}
	return nil
}

// newID returns a random send id (128 bits, hex).
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
