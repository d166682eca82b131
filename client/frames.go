package client

import "time"

// sendFrame is the send frame; without Type it is also the body of
// POST /v1/conversations/{id}/messages. omitzero keeps an empty but set
// Ciphertexts or Ciphertext on the wire, so the server judges it.
type sendFrame struct {
	Type         string            `json:"type,omitempty"`
	ID           string            `json:"id"`
	Conversation string            `json:"conversation,omitempty"`
	Ciphertexts  map[string][]byte `json:"ciphertexts,omitzero"`
	Ciphertext   []byte            `json:"ciphertext,omitzero"`
	Plaintext    []byte            `json:"plaintext,omitzero"`
}

func newSendFrame(typ string, r SendRequest) sendFrame {
	return sendFrame{Type: typ, ID: r.ID, Conversation: r.Conversation, Ciphertexts: r.Ciphertexts, Ciphertext: r.Ciphertext, Plaintext: r.Plaintext}
}

type ackFrame struct {
	Type         string `json:"type"`
	Conversation string `json:"conversation"`
	Seq          int64  `json:"seq"`
}

// serverFrame is the union of the server's frames (sent, message, synced,
// devices_changed, error, pong). Without Type it also decodes a history message and an HTTP
// send receipt.
type serverFrame struct {
	Type         string    `json:"type"`
	ID           string    `json:"id"`
	Conversation string    `json:"conversation"`
	Seq          int64     `json:"seq"`
	TS           time.Time `json:"ts"`
	Sender       struct {
		UserID   string `json:"user_id"`
		DeviceID string `json:"device_id"`
	} `json:"sender"`
	Ciphertext []byte   `json:"ciphertext"`
	UserID     string   `json:"user_id"` // devices_changed
	Code       string   `json:"code"`
	Message    string   `json:"message"`
	Missing    []string `json:"missing"`
	Extra      []string `json:"extra"`
	RetryAfter int64    `json:"retry_after_ms"` // rate_limited
}

func (f *serverFrame) message() Message {
	return Message{
		Conversation:   f.Conversation,
		Seq:            f.Seq,
		SenderUserID:   f.Sender.UserID,
		SenderDeviceID: f.Sender.DeviceID,
		TS:             f.TS,
		Ciphertext:     f.Ciphertext,
	}
}

func (f *serverFrame) sent() Sent {
	return Sent{ID: f.ID, Conversation: f.Conversation, Seq: f.Seq, TS: f.TS}
}

func (f *serverFrame) err() *Error {
	return &Error{Code: f.Code, Detail: f.Message, Missing: f.Missing, Extra: f.Extra, ID: f.ID,
		RetryAfter: time.Duration(f.RetryAfter) * time.Millisecond}
}
