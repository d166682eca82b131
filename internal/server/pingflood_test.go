package server_test

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/server"
)

// rawPeer is an upgraded connection written frame by frame and read only
// when the test says so: a client that floods and never reads.
type rawPeer struct {
	conn net.Conn
	br   *bufio.Reader
}

func (n *node) dialRaw(t *testing.T, token string) *rawPeer {
	t.Helper()
	host := strings.TrimPrefix(n.url, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := "GET /v1/ws HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Authorization: Bearer " + token + "\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", res, err)
	}
	return &rawPeer{conn: conn, br: br}
}

// frame writes one masked client frame.
func (r *rawPeer) frame(t *testing.T, op byte, payload []byte) {
	t.Helper()
	b := []byte{0x80 | op, 0x80 | byte(len(payload)), 1, 2, 3, 4} // payloads here are < 126 bytes
	for i, c := range payload {
		b = append(b, c^byte(i%4+1))
	}
	_ = r.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.conn.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// frames reads until the node ends the connection and returns the opcodes
// and payloads it sent.
func (r *rawPeer) frames(t *testing.T) (ops []byte, payloads [][]byte) {
	t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	all, err := io.ReadAll(r.br)
	if err != nil {
		t.Fatalf("the node did not end the connection: %v (read %d bytes)", err, len(all))
	}
	for len(all) >= 2 {
		op, n, h := all[0]&0x0F, int(all[1]&0x7F), 2
		switch n {
		case 126:
			n, h = int(binary.BigEndian.Uint16(all[2:4])), 4
		case 127:
			n, h = int(binary.BigEndian.Uint64(all[2:10])), 10
		}
		if len(all) < h+n {
			break
		}
		ops, payloads = append(ops, op), append(payloads, all[h:h+n])
		all = all[h+n:]
	}
	return ops, payloads
}

// TestPingFloodsAreClosed: a socket that sends WebSocket pings, or JSON ping
// frames, as fast as it can without reading is closed with 1008 once it has
// gone a burst past the frame rate: a ping is a frame, whatever its layer.
// WebSocket pings used to count against no limit (the gateway answered them
// itself), so such a socket was never closed and its pongs piled up.
func TestPingFloodsAreClosed(t *testing.T) {
	n := limitedNode(t, func(cc *chat.Config, _ *server.Config) { cc.Limits.FramesPerSocket = chat.Rate{N: 5, Per: time.Minute} })
	for _, tc := range []struct {
		name, user string
		ping       func(t *testing.T, r *rawPeer)
	}{
		{"a WebSocket ping flood is closed with 1008", "wsping", func(t *testing.T, r *rawPeer) { r.frame(t, 0x9, []byte("are you there")) }},
		{"a JSON ping flood is closed with 1008", "jsonping", func(t *testing.T, r *rawPeer) { r.frame(t, 0x1, []byte(`{"type":"ping"}`)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := n.dialRaw(t, n.signup(t, tc.user, "phone")[0].token)
			for range 200 {
				tc.ping(t, r)
			}
			ops, payloads := r.frames(t)
			pongs := 0
			for i, op := range ops {
				var f struct{ Type string }
				if op == 0xA || op == 0x1 && json.Unmarshal(payloads[i], &f) == nil && f.Type == "pong" {
					pongs++
				}
			}
			last := len(ops) - 1
			if last < 0 || ops[last] != 0x8 || len(payloads[last]) < 2 || binary.BigEndian.Uint16(payloads[last]) != 1008 {
				t.Fatalf("the flood did not end with a 1008 close frame (%d frames)", len(ops))
			}
			if pongs > 5 {
				t.Fatalf("%d pongs with a frame rate of 5 a minute", pongs)
			}
		})
	}
}
