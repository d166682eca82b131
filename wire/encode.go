package wire

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"
)

// The Append functions encode frames by hand, for the hot paths of a node
// (a message frame per recipient, a sent frame per send) and of the load
// generator: they append to b and allocate nothing when b has room. Each
// writes what encoding/json writes for the frame's struct (the tests hold
// them to that).

// AppendMessage appends the message frame m, with "type":"message" whatever m.Type says.
func AppendMessage(b []byte, m *Message) []byte {
	b = append(b, `{"type":"`+TypeMessage+`","conversation":`...)
	b = AppendString(b, m.Conversation)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, m.Seq, 10)
	b = append(b, `,"sender":{"user_id":`...)
	b = AppendString(b, m.Sender.UserID)
	b = append(b, `,"device_id":`...)
	b = AppendString(b, m.Sender.DeviceID)
	b = append(b, `},"ts":"`...)
	b = AppendTime(b, time.Time(m.TS))
	b = append(b, `","ciphertext":"`...)
	b = base64.StdEncoding.AppendEncode(b, m.Ciphertext)
	return append(b, `"}`...)
}

// AppendSent appends the sent frame s, with "type":"sent" whatever s.Type says.
func AppendSent(b []byte, s *Sent) []byte {
	b = append(b, `{"type":"`+TypeSent+`","id":`...)
	b = AppendString(b, s.ID)
	b = append(b, `,"conversation":`...)
	b = AppendString(b, s.Conversation)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, s.Seq, 10)
	b = append(b, `,"ts":"`...)
	b = AppendTime(b, time.Time(s.TS))
	return append(b, `"}`...)
}

// AppendSynced appends the synced frame.
func AppendSynced(b []byte) []byte { return append(b, `{"type":"`+TypeSynced+`"}`...) }

// AppendPong appends the pong frame.
func AppendPong(b []byte) []byte { return append(b, `{"type":"`+TypePong+`"}`...) }

// AppendDevicesChanged appends the devices_changed frame for userID.
func AppendDevicesChanged(b []byte, userID string) []byte {
	b = append(b, `{"type":"`+TypeDevicesChanged+`","user_id":`...)
	b = AppendString(b, userID)
	return append(b, '}')
}

// AppendAck appends the ack frame for seq in conv.
func AppendAck(b []byte, conv string, seq int64) []byte {
	b = append(b, `{"type":"`+TypeAck+`","conversation":`...)
	b = AppendString(b, conv)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	return append(b, '}')
}

// SendHead is how a send frame starts: a hand encoder appends the id's
// characters and goes on with SendConversation.
const (
	SendHead         = `{"type":"` + TypeSend + `","id":"`
	SendConversation = `","conversation":"`
)

// AppendString appends s as a JSON string, as encoding/json writes it; ids
// are plain ASCII, anything else goes through encoding/json.
func AppendString(b []byte, s string) []byte {
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

// AppendTime appends t as TimeLayout (UTC, milliseconds:
// 2006-01-02T15:04:05.000Z), without quotes, and without
// time.Time.AppendFormat, which looked up the location and parsed the layout
// once per frame: 8 % of a node's CPU when every send is answered with a
// sent frame. Times outside 1970-9999 take AppendFormat.
func AppendTime(b []byte, t time.Time) []byte {
	ms := t.UnixMilli()
	if ms < 0 || ms >= 253402300800000 {
		return t.UTC().AppendFormat(b, TimeLayout)
	}
	days, rem := ms/86400000, ms%86400000
	// Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
	z := days + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	b = appendDigits(b, y, 4)
	b = append(b, '-')
	b = appendDigits(b, m, 2)
	b = append(b, '-')
	b = appendDigits(b, d, 2)
	b = append(b, 'T')
	b = appendDigits(b, rem/3600000, 2)
	b = append(b, ':')
	b = appendDigits(b, rem/60000%60, 2)
	b = append(b, ':')
	b = appendDigits(b, rem/1000%60, 2)
	b = append(b, '.')
	b = appendDigits(b, rem%1000, 3)
	return append(b, 'Z')
}

// appendDigits appends v (>= 0) as exactly n decimal digits.
func appendDigits(b []byte, v int64, n int) []byte {
	for i := n - 1; i >= 0; i-- {
		b = append(b, 0)
	}
	for i := len(b) - 1; n > 0; i, n = i-1, n-1 {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}
