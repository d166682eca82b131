package faults

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/wire"
)

// A tap records what the server wrote on each of one device's sockets, as
// bytes on the TCP stream, under the SDK: the SDK's own ordering and
// deduplication cannot hide a frame written out of order or a hole.
type tap struct {
	mu      sync.Mutex
	streams []*stream
	live    map[*tapConn]struct{}
}

// stream is one socket's server-to-client messages, in the order of the bytes.
type stream struct {
	msgs   []wireMsg
	status int    // HTTP status of the upgrade answer, 0 until read
	close  int    // close code of the server's close frame, 0 if none came
	bad    string // the stream could not be parsed: why
}

type wireMsg msgKey

func newTap() *tap { return &tap{live: map[*tapConn]struct{}{}} }

// httpClient returns a client whose connections are recorded. Keep-alives
// are off: each dial is one socket, one stream.
func (tp *tap) httpClient() *http.Client {
	d := net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			tc := &tapConn{Conn: c, tap: tp, s: &stream{}}
			tp.mu.Lock()
			tp.streams = append(tp.streams, tc.s)
			tp.live[tc] = struct{}{}
			tp.mu.Unlock()
			return tc, nil
		},
	}}
}

// dropAll closes every open socket of the device at once, as a network
// that drops every connection does.
func (tp *tap) dropAll() {
	tp.mu.Lock()
	conns := make([]*tapConn, 0, len(tp.live))
	for c := range tp.live {
		conns = append(conns, c)
	}
	tp.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// snapshot returns copies of the streams for the checker.
func (tp *tap) snapshot() []stream {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	out := make([]stream, len(tp.streams))
	for i, s := range tp.streams {
		out[i] = *s
		out[i].msgs = append([]wireMsg(nil), s.msgs...)
	}
	return out
}

// tapConn parses what it reads: the HTTP answer to the upgrade, then
// WebSocket frames (unmasked, as a server sends them).
type tapConn struct {
	net.Conn
	tap  *tap
	s    *stream
	buf  []byte // bytes not yet parsed
	head bool   // the HTTP answer is parsed
	done bool   // nothing more to parse (not an upgrade, or a parse error)
	msg  []byte // a fragmented message being assembled
	once sync.Once
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.tap.mu.Lock()
		c.feed(p[:n])
		c.tap.mu.Unlock()
	}
	return n, err
}

func (c *tapConn) Close() error {
	c.once.Do(func() {
		c.tap.mu.Lock()
		delete(c.tap.live, c)
		c.tap.mu.Unlock()
	})
	return c.Conn.Close()
}

// feed parses b; called with the tap's lock held.
func (c *tapConn) feed(b []byte) {
	if c.done {
		return
	}
	c.buf = append(c.buf, b...)
	if !c.head {
		i := bytes.Index(c.buf, []byte("\r\n\r\n"))
		if i < 0 {
			return
		}
		line, _, _ := bytes.Cut(c.buf[:i], []byte("\r\n"))
		// "HTTP/1.1 101 Switching Protocols"
		if f := bytes.Fields(line); len(f) >= 2 {
			c.s.status, _ = strconv.Atoi(string(f[1]))
		}
		c.head = true
		c.buf = c.buf[i+4:]
		if c.s.status != http.StatusSwitchingProtocols {
			c.done = true
			return
		}
	}
	for c.frame() {
	}
}

// frame parses one frame from buf if it is complete, and reports whether it did.
func (c *tapConn) frame() bool {
	b := c.buf
	if len(b) < 2 {
		return false
	}
	fin, op := b[0]&0x80 != 0, b[0]&0x0f
	if b[1]&0x80 != 0 {
		c.fail("a masked frame from the server")
		return false
	}
	n, hl := uint64(b[1]&0x7f), 2
	switch n {
	case 126:
		if len(b) < 4 {
			return false
		}
		n, hl = uint64(binary.BigEndian.Uint16(b[2:])), 4
	case 127:
		if len(b) < 10 {
			return false
		}
		n, hl = binary.BigEndian.Uint64(b[2:]), 10
	}
	if uint64(len(b)-hl) < n {
		return false
	}
	payload := b[hl : hl+int(n)]
	switch op {
	case 0x1, 0x2, 0x0: // text, binary, continuation
		c.msg = append(c.msg, payload...)
		if fin {
			c.message(c.msg)
			c.msg = c.msg[:0]
		}
	case 0x8:
		if len(payload) >= 2 {
			c.s.close = int(binary.BigEndian.Uint16(payload))
		} else {
			c.s.close = 1005
		}
	}
	c.buf = append(c.buf[:0], b[hl+int(n):]...)
	return true
}

func (c *tapConn) message(m []byte) {
	var f struct {
		Type         string `json:"type"`
		Conversation string `json:"conversation"`
		Seq          int64  `json:"seq"`
	}
	if err := json.Unmarshal(m, &f); err != nil {
		c.fail("a frame that is not JSON: " + err.Error())
		return
	}
	if f.Type == wire.TypeMessage {
		c.s.msgs = append(c.s.msgs, wireMsg{f.Conversation, f.Seq})
	}
}

func (c *tapConn) fail(why string) {
	c.s.bad, c.done = why, true
}

// lastSeen says, for a failing check, the highest seq of conv on each of
// the device's sockets in dial order, and how many sockets are open.
func (tp *tap) lastSeen(conv string) string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	var b strings.Builder
	for i, s := range tp.streams {
		var hi int64
		for _, m := range s.msgs {
			if m.conv == conv {
				hi = max(hi, m.seq)
			}
		}
		fmt.Fprintf(&b, "%d:%d(close %d) ", i, hi, s.close)
	}
	fmt.Fprintf(&b, "open %d", len(tp.live))
	return b.String()
}
