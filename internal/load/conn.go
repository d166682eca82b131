package load

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio"

	"github.com/switchboard-chat/switchboard/wire"
)

// Socket states. A Conn moves forward only, but for Reconnect (synced →
// reconnecting → idle, then dialed again); the first move to a terminal
// state (failed, dropped, stopped) decides how its end is counted.
const (
	stIdle         int32 = iota
	stDialing            // TCP connect in progress (a dialer goroutine)
	stUpgrading          // upgrade request written, waiting for 101
	stSyncing            // upgraded, waiting for the synced frame
	stSynced             // authenticated and synced: "connected"
	stFailed             // never reached synced
	stDropped            // closed by the server or the network after synced
	stStopped            // closed by us at the end of the run
	stReconnecting       // closed by us to connect again (Reconnect); redialed once its close is seen
)

// Conn is one device's socket in a worker. An idle Conn holds no buffer:
// buf and frag are nil except while a frame arrives in pieces.
type Conn struct {
	w     *worker
	nc    atomic.Pointer[nbio.Conn] // the current connection (a Reconnect replaces it)
	Index int                       // the device's index in the worker's share

	state   atomic.Int32
	started int64 // unix nanos when the dial began
	// mu orders the input of one device: nbio runs OnClose on a goroutine
	// of its own, and after a Reconnect the new connection may be on
	// another poller than the old one's last read. It is never contended
	// but for that moment.
	mu        sync.Mutex
	buf       []byte // unparsed input: the 101 answer or a partial frame
	frag      []byte // a fragmented message being assembled
	fragOp    byte
	accept    string // the expected Sec-WebSocket-Accept while upgrading
	closeCode atomic.Int32
	redialed  bool // guarded by mu: the current connection replaces one Reconnect closed
	retries   int  // guarded by mu: redials of this reconnect that closed before synced
}

// maxRedialRetries bounds how often one reconnect is dialed again after its
// new connection closed before it synced.
const maxRedialRetries = 2

// Synced reports whether the socket is authenticated, synced and open.
func (c *Conn) Synced() bool { return c.state.Load() == stSynced }

// SendText writes one text frame. It never blocks: nbio queues what the
// kernel does not take. It is safe from any goroutine.
func (c *Conn) SendText(payload []byte) error {
	bp := framePool.Get().(*[]byte)
	b := appendClientFrame((*bp)[:0], opText, payload)
	_, err := c.nc.Load().Write(b)
	*bp = b
	framePool.Put(bp)
	return err
}

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// WebSocket opcodes (RFC 6455 §5.2).
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// maxMessage bounds what a server may send us in one message; beyond it the
// socket is failed rather than buffered without limit.
const maxMessage = 16 << 20

// appendClientFrame appends a final frame with a random mask, as a client
// must send it.
func appendClientFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], rand.Uint32())
	b = append(b, key[:]...)
	start := len(b)
	b = append(b, payload...)
	for i := range b[start:] {
		b[start+i] ^= key[i&3]
	}
	return b
}

const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// upgradeRequest is the HTTP request that opens the socket, and the accept
// value the answer must carry.
func upgradeRequest(host, path, token string) (req []byte, accept string) {
	var k [16]byte
	binary.LittleEndian.PutUint64(k[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(k[8:], rand.Uint64())
	key := base64.StdEncoding.EncodeToString(k[:])
	sum := sha1.Sum([]byte(key + wsGUID))
	accept = base64.StdEncoding.EncodeToString(sum[:])
	req = make([]byte, 0, 256+len(token))
	req = append(req, "GET "...)
	req = append(req, path...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, host...)
	req = append(req, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "...)
	req = append(req, key...)
	req = append(req, "\r\nAuthorization: Bearer "...)
	req = append(req, token...)
	req = append(req, "\r\n\r\n"...)
	return req, accept
}

// onData handles input of connection nc, on its poller goroutine; input of
// a connection Reconnect replaced is dropped.
func (c *Conn) onData(nc *nbio.Conn, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nc.Load() != nc {
		return
	}
	if len(c.buf) > 0 {
		c.buf = append(c.buf, data...)
		data = c.buf
	}
	n := c.consume(data)
	switch rest := data[n:]; {
	case len(rest) == 0:
		c.buf = nil
	case len(c.buf) > 0:
		c.buf = append(c.buf[:0], rest...)
	default:
		c.buf = append([]byte(nil), rest...)
	}
	if len(c.buf) > maxMessage+16 {
		c.fail("message_too_large")
	}
}

// consume handles every complete unit in data and returns the bytes used.
func (c *Conn) consume(data []byte) int {
	off := 0
	if c.state.Load() == stUpgrading {
		end := bytes.Index(data, []byte("\r\n\r\n"))
		if end < 0 {
			if len(data) > 16<<10 {
				c.fail("upgrade_bad_answer")
			}
			return 0
		}
		if !c.upgraded(data[:end]) {
			return len(data)
		}
		off = end + 4
	}
	for {
		st := c.state.Load()
		if st != stSyncing && st != stSynced {
			return len(data)
		}
		rest := data[off:]
		if len(rest) < 2 {
			return off
		}
		fin, op, masked := rest[0]&0x80 != 0, rest[0]&0x0F, rest[1]&0x80 != 0
		hl, n := 2, uint64(rest[1]&0x7F)
		switch n {
		case 126:
			if len(rest) < 4 {
				return off
			}
			hl, n = 4, uint64(binary.BigEndian.Uint16(rest[2:]))
		case 127:
			if len(rest) < 10 {
				return off
			}
			hl, n = 10, binary.BigEndian.Uint64(rest[2:])
		}
		if masked || n > maxMessage {
			c.fail("protocol_error")
			return len(data)
		}
		if uint64(len(rest)-hl) < n {
			return off
		}
		c.frame(fin, op, rest[hl:hl+int(n)])
		off += hl + int(n)
	}
}

// upgraded checks the answer to the upgrade request.
func (c *Conn) upgraded(head []byte) bool {
	line, headers, _ := bytes.Cut(head, []byte("\r\n"))
	status := 0
	if f := bytes.Fields(line); len(f) >= 2 {
		status, _ = strconv.Atoi(string(f[1]))
	}
	if status != 101 {
		c.fail("upgrade_http_" + strconv.Itoa(status))
		return false
	}
	if !bytes.Contains(bytes.ToLower(headers), []byte("sec-websocket-accept: "+lowerASCII(c.accept))) {
		c.fail("upgrade_bad_accept")
		return false
	}
	c.accept = ""
	if !c.state.CompareAndSwap(stUpgrading, stSyncing) {
		return false
	}
	c.w.upgradeHist.Record(time.Duration(time.Now().UnixNano() - c.started))
	return true
}

func lowerASCII(s string) string {
	b := []byte(s)
	for i, ch := range b {
		if 'A' <= ch && ch <= 'Z' {
			b[i] = ch + 'a' - 'A'
		}
	}
	return string(b)
}

func (c *Conn) frame(fin bool, op byte, payload []byte) {
	switch op {
	case opText, opBinary:
		if c.frag != nil {
			c.fail("protocol_error")
			return
		}
		if !fin {
			c.frag, c.fragOp = append([]byte(nil), payload...), op
			return
		}
		c.message(payload)
	case opCont:
		if c.frag == nil {
			c.fail("protocol_error")
			return
		}
		c.frag = append(c.frag, payload...)
		if fin {
			m := c.frag
			c.frag = nil
			c.message(m)
		}
	case opPing:
		b := appendClientFrame(make([]byte, 0, 16+len(payload)), opPong, payload)
		_, _ = c.nc.Load().Write(b)
	case opPong:
	case opClose:
		code := 1005
		if len(payload) >= 2 {
			code = int(binary.BigEndian.Uint16(payload))
		}
		c.closeCode.Store(int32(code))
		_, _ = c.nc.Load().Write(appendClientFrame(nil, opClose, payload[:min(len(payload), 2)]))
		c.end("close_" + strconv.Itoa(code))
	default:
		c.fail("protocol_error")
	}
}

// message handles one complete text message from the server.
func (c *Conn) message(m []byte) {
	typ := frameType(m)
	if typ == wire.TypeError {
		c.w.countError("error_frame_" + stringField(m, "code"))
	}
	if c.state.Load() == stSyncing {
		if typ != wire.TypeSynced {
			c.w.driver.OnFrame(c, typ, m)
			return
		}
		if !c.state.CompareAndSwap(stSyncing, stSynced) {
			return
		}
		c.w.connectHist.Record(time.Duration(time.Now().UnixNano() - c.started))
		c.w.synced.Add(1)
		c.w.driver.OnSynced(c)
		return
	}
	c.w.driver.OnFrame(c, typ, m)
}

// Reconnect closes a synced socket, as a phone losing its network does
// (with a reset, not a close handshake), and dials it again once the close
// has gone through: the new connection replays the device's backlog before
// synced. False if the socket was not synced. What was in flight on the old
// connection is lost to it, which is what the replay must make up for.
func (c *Conn) Reconnect() bool {
	if !c.state.CompareAndSwap(stSynced, stReconnecting) {
		return false
	}
	c.w.reconnects.Add(1)
	_ = c.nc.Load().Close()
	return true
}

// closed handles the close of connection nc (nbio's OnClose, on a
// goroutine of its own): the end of the socket, or the close a Reconnect
// asked for, after which it is dialed again.
func (c *Conn) closed(nc *nbio.Conn, kind string) {
	c.mu.Lock()
	if c.nc.Load() != nc {
		c.mu.Unlock()
		return
	}
	if c.state.CompareAndSwap(stReconnecting, stIdle) {
		c.buf, c.frag = nil, nil
		c.nc.Store(nil)
		c.redialed, c.retries = true, 0
		c.mu.Unlock()
		c.w.redial(c)
		return
	}
	// A reconnect whose new connection closed before it synced is dialed
	// again, as a phone retries; a first connection is not (it fails).
	if st := c.state.Load(); c.redialed && (st == stUpgrading || st == stSyncing) &&
		c.retries < maxRedialRetries && c.state.CompareAndSwap(st, stIdle) {
		c.retries++
		c.buf, c.frag = nil, nil
		c.nc.Store(nil)
		c.mu.Unlock()
		c.w.redialRetries.Add(1)
		c.w.redial(c)
		return
	}
	c.mu.Unlock()
	c.end(kind)
}

// fail ends a socket that never synced, or drops one that did, counting
// kind once; then closes it.
func (c *Conn) fail(kind string) {
	c.end(kind)
}

// end moves the Conn to its terminal state, counts why, and closes it.
func (c *Conn) end(kind string) {
	for {
		st := c.state.Load()
		var to int32
		switch st {
		case stFailed, stDropped, stStopped, stReconnecting:
			return
		case stSynced:
			to = stDropped
		default:
			to = stFailed
		}
		if c.state.CompareAndSwap(st, to) {
			c.w.ended(st, to, kind)
			break
		}
	}
	if nc := c.nc.Load(); nc != nil {
		_ = nc.Close()
	}
}

// stop closes the socket at the end of the run; it is not an error.
func (c *Conn) stop() {
	for {
		st := c.state.Load()
		if st == stFailed || st == stDropped || st == stStopped {
			return
		}
		if c.state.CompareAndSwap(st, stStopped) {
			if st == stSynced { // (a reconnecting one was counted off by Reconnect)
				c.w.stoppedSynced.Add(1)
			}
			break
		}
	}
	if nc := c.nc.Load(); nc != nil {
		_ = nc.Close()
	}
}

// frameType returns the "type" of a server frame without decoding it all
// and, for the protocol's types, without allocating.
func frameType(m []byte) string {
	v := rawStringField(m, "type")
	for _, t := range wire.ServerTypes {
		if string(v) == t {
			return t
		}
	}
	return string(v)
}

// stringField finds "key":"value" in a flat JSON object and returns value
// (not unescaped: the fields read this way are plain ASCII).
func stringField(m []byte, key string) string { return string(rawStringField(m, key)) }

func rawStringField(m []byte, key string) []byte {
	var pat [40]byte
	p := append(append(append(pat[:0], '"'), key...), '"')
	i := bytes.Index(m, p)
	if i < 0 {
		return nil
	}
	rest := bytes.TrimLeft(m[i+len(p):], " \t\r\n")
	if len(rest) == 0 || rest[0] != ':' {
		return nil
	}
	rest = bytes.TrimLeft(rest[1:], " \t\r\n")
	if len(rest) == 0 || rest[0] != '"' {
		return nil
	}
	rest = rest[1:]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}
