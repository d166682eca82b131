package client

import (
	"time"

	"github.com/switchboard-chat/switchboard/wire"
)

// The frames are package wire's; this file turns them into the SDK's types.

// newSendFrame is the send frame for r; without typ it is also the body of
// POST /v1/conversations/{id}/messages.
func newSendFrame(typ string, r SendRequest) wire.ClientFrame {
	return wire.ClientFrame{Type: typ, ID: r.ID, Conversation: r.Conversation, Ciphertexts: r.Ciphertexts, Ciphertext: r.Ciphertext, Plaintext: r.Plaintext,
		Attachments: r.Attachments}
}

// serverFrame is any server frame (wire.ServerFrame), with the SDK's views of it.
type serverFrame wire.ServerFrame

func (f *serverFrame) message() Message {
	return Message{
		Conversation:   f.Conversation,
		Seq:            f.Seq,
		SenderUserID:   f.Sender.UserID,
		SenderDeviceID: f.Sender.DeviceID,
		TS:             f.TS,
		Ciphertext:     f.Ciphertext,
		Event:          newEvent(f.Event),
	}
}

func (f *serverFrame) sent() Sent {
	return Sent{ID: f.ID, Conversation: f.Conversation, Seq: f.Seq, TS: f.TS}
}

func (f *serverFrame) err() *Error {
	return &Error{Code: f.Code, Detail: f.Message, Missing: f.Missing, Extra: f.Extra, ID: f.ID,
		RetryAfter: time.Duration(f.RetryAfterMS) * time.Millisecond}
}
