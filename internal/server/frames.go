package server

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"

	sb "github.com/switchboard-chat/switchboard"
)

// inFrame is any client frame; which fields matter depends on Type.
// decodeClientFrame (framedecode.go) decodes it by hand on the socket: a new
// field needs a case there too (TestDecodeClientFrameKnowsEveryField).
type inFrame struct {
	Type         string            `json:"type"`
	ID           string            `json:"id"`
	Conversation string            `json:"conversation"`
	Ciphertexts  map[string][]byte `json:"ciphertexts"`
	Ciphertext   []byte            `json:"ciphertext"`
	Plaintext    []byte            `json:"plaintext"`
	Seq          *int64            `json:"seq"`
}

// frameHead is decoded first, so an error can name the frame's id even when the rest is malformed.
type frameHead struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

type sentFrame struct {
	Type         string   `json:"type,omitempty"` // empty in HTTP answers
	ID           string   `json:"id"`
	Conversation string   `json:"conversation"`
	Seq          int64    `json:"seq"`
	TS           jsonTime `json:"ts"`
}

type errorFrame struct {
	Type    string   `json:"type"`
	ID      string   `json:"id,omitempty"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Missing []string `json:"missing,omitzero"` // both present for devices_mismatch, empty when empty
	Extra   []string `json:"extra,omitzero"`
	// RetryAfterMS is set for rate_limited: milliseconds until a retry can succeed.
	RetryAfterMS int64 `json:"retry_after_ms,omitempty"`
}

var (
	syncedFrame = []byte(`{"type":"synced"}`)
	pongFrame   = []byte(`{"type":"pong"}`)
)

// tsLayout is RFC 3339 in UTC with exactly three fractional digits.
const tsLayout = "2006-01-02T15:04:05.000Z07:00"

// appendMessage appends the message frame for one recipient. It is the hot
// path of delivery, so it appends by hand instead of going through reflection.
func appendMessage(b []byte, m *sb.Delivery) []byte {
	b = append(b, `{"type":"message","conversation":`...)
	b = appendString(b, m.ConversationID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, m.Seq, 10)
	b = append(b, `,"sender":{"user_id":`...)
	b = appendString(b, m.SenderUserID)
	b = append(b, `,"device_id":`...)
	b = appendString(b, m.SenderDeviceID)
	b = append(b, `},"ts":"`...)
	b = appendTS(b, m.SentAt)
	b = append(b, `","ciphertext":"`...)
	b = base64.StdEncoding.AppendEncode(b, m.Ciphertext)
	return append(b, `"}`...)
}

// appendSent appends the sent frame answering a send on the socket: the
// sentFrame encoding/json would write, without reflection.
func appendSent(b []byte, id string, m *sb.Message) []byte {
	b = append(b, `{"type":"sent","id":`...)
	b = appendString(b, id)
	b = append(b, `,"conversation":`...)
	b = appendString(b, m.ConversationID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, m.Seq, 10)
	b = append(b, `,"ts":"`...)
	b = appendTS(b, m.SentAt)
	return append(b, `"}`...)
}

// appendString appends s as a JSON string; ids are plain ASCII, anything else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// messageJSON is a delivery as the HTTP API lists it (the message frame without type).
type messageJSON struct {
	Conversation string     `json:"conversation"`
	Seq          int64      `json:"seq"`
	Sender       senderJSON `json:"sender"`
	TS           jsonTime   `json:"ts"`
	Ciphertext   []byte     `json:"ciphertext"`
}

type senderJSON struct {
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
}

func toMessageJSON(d *sb.Delivery) messageJSON {
	return messageJSON{d.ConversationID, d.Seq, senderJSON{d.SenderUserID, d.SenderDeviceID}, jsonTime(d.SentAt), d.Ciphertext}
}

// jsonTime marshals as tsLayout, so every time on the wire has the same shape.
type jsonTime time.Time

func (t jsonTime) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 32), '"')
	b = appendTS(b, time.Time(t))
	return append(b, '"'), nil
}
