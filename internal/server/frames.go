package server

import (
	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// The frames are package wire's; this file only fills them from the
// domain's types, which wire (stdlib only) does not know.

var (
	syncedFrame = wire.AppendSynced(nil)
	pongFrame   = wire.AppendPong(nil)
)

// appendMessage appends the message frame for one recipient: the hot path
// of delivery (wire.AppendMessage encodes without reflection).
func appendMessage(b []byte, d *sb.Delivery) []byte {
	if d.Event != nil {
		return appendEvent(b, d) // members.go
	}
	return wire.AppendMessage(b, &wire.Message{Conversation: d.ConversationID, Seq: d.Seq,
		Sender: wire.Sender{UserID: d.SenderUserID, DeviceID: d.SenderDeviceID}, TS: wire.Time(d.SentAt), Ciphertext: d.Ciphertext})
}

// appendSent appends the sent frame answering a send on the socket.
func appendSent(b []byte, id string, m *sb.Message) []byte {
	return wire.AppendSent(b, &wire.Sent{ID: id, Conversation: m.ConversationID, Seq: m.Seq, TS: wire.Time(m.SentAt)})
}

// toMessageJSON is a delivery as the HTTP API lists it (the message frame without type).
func toMessageJSON(d *sb.Delivery) wire.Message {
	return wire.Message{Conversation: d.ConversationID, Seq: d.Seq,
		Sender: wire.Sender{UserID: d.SenderUserID, DeviceID: d.SenderDeviceID}, TS: wire.Time(d.SentAt), Ciphertext: d.Ciphertext}
}

// jsonTime is how the HTTP API writes times: as the frames do.
type jsonTime = wire.Time
