package chat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	sb "github.com/switchboard-chat/switchboard"
)

// A stored message travels on the bus in a small binary form, ciphertext
// only. Every message is encoded once and decoded once per subscribing
// node; with encoding/json the two were a fifth of a busy node's CPU
// (a message to a 500-device group carries 500 device ids).
//
//	'm' 1                                   magic and version
//	str conversation, varint seq, str sender user, str sender device
//	varint sent at (Unix microseconds, the stores' precision)
//	opt shared ciphertext
//	uvarint n, then n × (str device id, opt ciphertext)
//	varint committed (Unix microseconds; version 2 only)
//	['e' str event]                         an event's JSON (not empty), only for an event
//
// str is a uvarint length and the bytes; opt is 0 (nil) or 1 and a str.
//
// Version 2 added the commit time, last, for the fan-out latency metric.
// A version 1 message (from a node not yet upgraded) decodes with a zero
// Committed; a version 1 node refuses a version 2 message, so during a
// rolling upgrade its devices get such messages from the store (the gap
// read) a second late rather than live.

const busCodecVersion = 2

// EncodeMessage encodes a stored message for the bus.
func EncodeMessage(m *sb.Message) []byte {
	n := 2 + 4*binary.MaxVarintLen64 + len(m.ConversationID) + len(m.SenderUserID) + len(m.SenderDeviceID) + 2*binary.MaxVarintLen64
	n += len(m.Shared) + 1 + 2*binary.MaxVarintLen64
	if m.Event != nil {
		n += 1 + binary.MaxVarintLen64 + len(m.Event)
	}
	for id, ct := range m.Ciphertexts {
		n += 2*binary.MaxVarintLen64 + 1 + len(id) + len(ct)
	}
	b := make([]byte, 0, n)
	b = append(b, 'm', busCodecVersion)
	b = appendStr(b, m.ConversationID)
	b = binary.AppendVarint(b, m.Seq)
	b = appendStr(b, m.SenderUserID)
	b = appendStr(b, m.SenderDeviceID)
	b = binary.AppendVarint(b, m.SentAt.UnixMicro())
	b = appendOpt(b, m.Shared)
	b = binary.AppendUvarint(b, uint64(len(m.Ciphertexts)))
	for id, ct := range m.Ciphertexts {
		b = appendStr(b, id)
		b = appendOpt(b, ct)
	}
	var committed int64 // zero time: 0, not year 1's microseconds
	if !m.Committed.IsZero() {
		committed = m.Committed.UnixMicro()
	}
	b = binary.AppendVarint(b, committed)
	if m.Event != nil {
		// A trailer, so that a message's encoding is what it was.
		b = appendStr(append(b, 'e'), m.Event)
	}
	return b
}

func appendStr[T string | []byte](b []byte, s T) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func appendOpt(b []byte, v []byte) []byte {
	if v == nil {
		return append(b, 0)
	}
	return appendStr(append(b, 1), v)
}

var errBusMessage = errors.New("truncated or malformed")

// DecodeMessage decodes a message from the bus. The ciphertexts it returns
// share data's memory.
func DecodeMessage(data []byte) (*sb.Message, error) {
	if len(data) < 2 || data[0] != 'm' || data[1] < 1 || data[1] > busCodecVersion {
		return nil, fmt.Errorf("decode bus message: not a version 1 to %d message", busCodecVersion)
	}
	d := busDecoder{b: data[2:]}
	m := &sb.Message{}
	m.ConversationID = string(d.str())
	m.Seq = d.varint()
	m.SenderUserID = string(d.str())
	m.SenderDeviceID = string(d.str())
	m.SentAt = time.UnixMicro(d.varint()).UTC()
	m.Shared = d.opt()
	n := d.uvarint()
	// Each entry takes at least 2 bytes: a bound before allocating.
	if n > uint64(len(d.b))/2 {
		return nil, fmt.Errorf("decode bus message: %w", errBusMessage)
	}
	m.Ciphertexts = make(map[string][]byte, n)
	for range n {
		id := string(d.str())
		m.Ciphertexts[id] = d.opt()
	}
	if data[1] >= 2 {
		if c := d.varint(); c != 0 {
			m.Committed = time.UnixMicro(c).UTC()
		}
	}
	if len(d.b) > 0 && d.b[0] == 'e' && !d.err {
		d.b = d.b[1:]
		if m.Event = d.str(); len(m.Event) == 0 {
			d.err = true
		}
	}
	if d.err || len(d.b) != 0 {
		return nil, fmt.Errorf("decode bus message: %w", errBusMessage)
	}
	return m, nil
}

// busDecoder reads the fields in order; a short or malformed field sets err
// and leaves the rest empty.
type busDecoder struct {
	b   []byte
	err bool
}

func (d *busDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *busDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *busDecoder) str() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err, d.b = true, nil
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

func (d *busDecoder) opt() []byte {
	if len(d.b) == 0 {
		d.err = true
		return nil
	}
	flag := d.b[0]
	d.b = d.b[1:]
	switch flag {
	case 0:
		return nil
	case 1:
		return d.str()
	}
	d.err, d.b = true, nil
	return nil
}
