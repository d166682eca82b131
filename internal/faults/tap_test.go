package faults

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// frame encodes an unmasked server frame.
func frame(fin bool, op byte, payload string) []byte {
	b := []byte{op}
	if fin {
		b[0] |= 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 126, 0, 0)
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b = append(b, 127, 0, 0, 0, 0, 0, 0, 0, 0)
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
	return append(b, payload...)
}

func msg(conv string, seq int64, pad int) string {
	return fmt.Sprintf(`{"type":"message","conversation":%q,"seq":%d,"ciphertext":"%s"}`, conv, seq, strings.Repeat("A", pad))
}

// TestTapParsesTheServersFrames feeds the tap what a socket carries, in
// pieces of every size, and checks what it records.
func TestTapParsesTheServersFrames(t *testing.T) {
	var wire []byte
	wire = append(wire, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"...)
	wire = append(wire, frame(true, 1, msg("c1", 1, 0))...)
	wire = append(wire, frame(true, 1, `{"type":"sent","id":"x","conversation":"c1","seq":9}`)...)
	wire = append(wire, frame(true, 9, "ping")...)
	wire = append(wire, frame(true, 1, msg("c1", 2, 300))...)   // 16-bit length
	wire = append(wire, frame(true, 1, msg("c2", 7, 70000))...) // 64-bit length
	whole := msg("c1", 3, 10)
	wire = append(wire, frame(false, 1, whole[:20])...) // fragmented
	wire = append(wire, frame(true, 0, whole[20:])...)
	wire = append(wire, frame(true, 8, "\x0f\xa8slow")...) // close 4008

	for _, chunk := range []int{1, 7, 100, len(wire)} {
		t.Run(fmt.Sprintf("read %d bytes at a time", chunk), func(t *testing.T) {
			tp := newTap()
			c := &tapConn{tap: tp, s: &stream{}}
			for i := 0; i < len(wire); i += chunk {
				c.feed(wire[i:min(i+chunk, len(wire))])
			}
			want := []wireMsg{{"c1", 1}, {"c1", 2}, {"c2", 7}, {"c1", 3}}
			if fmt.Sprint(c.s.msgs) != fmt.Sprint(want) || c.s.status != 101 || c.s.close != 4008 || c.s.bad != "" {
				t.Errorf("recorded %v, status %d, close %d, bad %q; want %v, 101, 4008", c.s.msgs, c.s.status, c.s.close, c.s.bad, want)
			}
		})
	}
	t.Run("a refused upgrade records its status and nothing else", func(t *testing.T) {
		c := &tapConn{tap: newTap(), s: &stream{}}
		c.feed([]byte("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad"))
		if c.s.status != 502 || len(c.s.msgs) != 0 || c.s.bad != "" {
			t.Errorf("%+v", *c.s)
		}
	})
}
