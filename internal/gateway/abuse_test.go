package gateway

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// rawSocket is an upgraded client connection driven byte by byte: a test
// writes frames a real client would never send, or never reads.
type rawSocket struct {
	conn net.Conn
	br   *bufio.Reader
}

// dialRawSocket upgrades a connection whose kernel receive buffer is small,
// so a peer that does not read backs the server's queue up quickly.
func dialRawSocket(t testing.TB, addr string) *rawSocket {
	t.Helper()
	d := net.Dialer{Control: nil}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.(*net.TCPConn).SetReadBuffer(8 << 10)
	t.Cleanup(func() { _ = conn.Close() })
	req := "GET /v1/ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", res, err)
	}
	return &rawSocket{conn: conn, br: br}
}

// clientFrame encodes one client frame, masked unless unmasked is set.
func clientFrame(op byte, payload []byte, unmasked bool) []byte {
	b := appendFrameHeader(nil, op, len(payload))
	if unmasked {
		return append(b, payload...)
	}
	b[1] |= 0x80
	mask := [4]byte{7, 1, 9, 3}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

// readAll reads what the server sent until it ends the connection.
func (r *rawSocket) readAll(t testing.TB) []byte {
	t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(r.br)
	if err != nil {
		t.Fatalf("reading until the server ends the connection: %v", err)
	}
	return b
}

// lastClose returns the code of the close frame that ends b, or 0.
func lastClose(b []byte) int {
	fs, _ := parseFrames(b)
	if len(fs) == 0 || fs[len(fs)-1].op != opClose || len(fs[len(fs)-1].payload) < 2 {
		return 0
	}
	return int(binary.BigEndian.Uint16(fs[len(fs)-1].payload))
}

// TestPingingPeerThatNeverReadsIsClosedWithBoundedQueue: a peer that sends
// pings as fast as it can and never reads makes the node queue a pong for
// each. Every queued byte counts against MaxQueued, pongs included: the
// socket is closed with 4008, and its queue never passes the bound by more
// than the close frame. Pongs used to bypass the bound, so four such
// sockets grew a node by hundreds of MiB.
func TestPingingPeerThatNeverReadsIsClosedWithBoundedQueue(t *testing.T) {
	const maxQueued = 64 << 10
	conns := make(chan *Conn, 1)
	s, addr := startServer(t, Config{MaxQueued: maxQueued}, &fakeHandler{open: func(c *Conn) {
		_ = c.nbc.SetWriteBuffer(16 << 10)
		conns <- c
	}})
	// The client starts reading as soon as the flood stops; on a loaded box
	// that can take a while, and a peer that takes nothing for closeTimeout
	// is dropped without its close frame.
	s.closeTimeout = 5 * time.Second
	r := dialRawSocket(t, addr)
	c := <-conns

	var peak atomic.Int64
	ping := clientFrame(opPing, make([]byte, 125), false)
	var batch []byte
	for range 64 {
		batch = append(batch, ping...)
	}
	// Bounded flood: far more pong bytes than the queue and both kernel
	// buffers hold; stop as soon as the socket is closing.
	for sent := 0; sent < 64<<20 && !c.closing.Load(); sent += len(batch) {
		_ = r.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := r.conn.Write(batch); err != nil {
			break
		}
		if q := c.queued.Load(); q > peak.Load() {
			peak.Store(q)
		}
		if peak.Load() > 4*maxQueued {
			break
		}
	}
	if p := peak.Load(); p > maxQueued+2+maxCloseReason {
		t.Fatalf("the socket's queue reached %d bytes, bound %d", p, maxQueued)
	}
	if !c.closing.Load() {
		t.Fatal("a peer that pings and never reads was not closed")
	}
	// The close frame is read when the TCP connection ends cleanly. It may
	// end with a reset instead: the node drops the connection while pings
	// the flood sent after the close still wait in its receive buffer (at
	// once for 1008, the inbound flood's close).
	_ = r.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(r.br)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading until the server ends the connection: %v", err)
	}
	if code := lastClose(b); err == nil && code != CloseSlowConsumer && code != ClosePolicy {
		t.Fatalf("closed with %d, want 4008 (or 1008)", code)
	}
}

// countingAdmitter is a Handler that also admits pings: ok decides.
type countingAdmitter struct {
	fakeHandler
	pings atomic.Int32
	ok    func(n int32) bool
}

func (a *countingAdmitter) AdmitPing(*Conn) bool { return a.ok(a.pings.Add(1)) }

// TestPingsPassTheHandlersAdmission: a Handler that is a PingAdmitter sees
// every ping before it is answered, and a ping it refuses gets no pong.
func TestPingsPassTheHandlersAdmission(t *testing.T) {
	h := &countingAdmitter{ok: func(n int32) bool { return n <= 2 }}
	_, addr := startServer(t, Config{}, h)
	w := dialWire(t, addr)
	for range 5 {
		w.send(opPing, []byte("p"))
	}
	waitFor(t, "five pings admitted or refused", func() bool { return h.pings.Load() == 5 })
	w.send(opClose, []byte{0x03, 0xE8})
	fs, err := parseFrames(w.wait(t))
	if err != nil {
		t.Fatal(err)
	}
	pongs := 0
	for _, f := range fs {
		if f.op == opPong {
			pongs++
		}
	}
	if pongs != 2 {
		t.Fatalf("%d pongs for 5 pings of which 2 were admitted", pongs)
	}
}

// TestUnmaskedClientFrameClosesWith1002: RFC 6455 §5.1 requires a server to
// close the connection on an unmasked client frame. nbio took one as it was
// and handed its message to OnMessage.
func TestUnmaskedClientFrameClosesWith1002(t *testing.T) {
	var got atomic.Int32
	opened := make(chan struct{}, 1)
	_, addr := startServer(t, Config{}, &fakeHandler{open: func(*Conn) { opened <- struct{}{} },
		message: func(*Conn, []byte) { got.Add(1) }})
	for _, tc := range []struct {
		name  string
		bytes []byte
	}{
		{"an unmasked text frame", clientFrame(opText, []byte("hello"), true)},
		{"an unmasked ping", clientFrame(opPing, nil, true)},
		{"an unmasked frame after a masked one in the same write", append(clientFrame(opText, []byte("ok"), false), clientFrame(opText, []byte("no"), true)...)},
	} {
		t.Run(tc.name+" closes the socket with 1002", func(t *testing.T) {
			r := dialRawSocket(t, addr)
			<-opened // the gateway has the socket (its 101 goes out a little before)
			if _, err := r.conn.Write(tc.bytes); err != nil {
				t.Fatal(err)
			}
			if code := lastClose(r.readAll(t)); code != CloseProtocolError {
				t.Fatalf("closed with %d, want 1002", code)
			}
		})
	}
	if n := got.Load(); n > 1 {
		t.Fatalf("%d messages reached OnMessage; only the masked one may", n)
	}
}

// TestMaskScanFollowsFramesCutAnywhere: the scan finds every header however
// the stream is cut into reads, for each length encoding.
func TestMaskScanFollowsFramesCutAnywhere(t *testing.T) {
	var stream []byte
	for _, n := range []int{0, 1, 125, 126, 300, 65535, 65536, 70000} {
		stream = append(stream, clientFrame(opText, make([]byte, n), false)...)
	}
	bad := append(append([]byte(nil), stream...), clientFrame(opText, []byte("x"), true)...)
	for _, cut := range []int{1, 2, 3, 7, 11, 1000, 65536} {
		var m maskScan
		for b := stream; len(b) > 0; {
			k := min(cut, len(b))
			if !m.scan(b[:k]) {
				t.Fatalf("reads of %d bytes: a masked stream refused", cut)
			}
			b = b[k:]
		}
		m = maskScan{}
		ok := true
		for b := bad; len(b) > 0 && ok; {
			k := min(cut, len(b))
			ok = m.scan(b[:k])
			b = b[k:]
		}
		if ok {
			t.Fatalf("reads of %d bytes: the unmasked last frame was not found", cut)
		}
	}
}

// TestRefusedSocketEndsOnThePeersCloseFrame: after Refuse the peer's bytes
// are not parsed, only followed to its close frame, which still ends the
// handshake at once. What the peer sent between (a frame over MaxFrame,
// which the parser would refuse, and pings) gets no answer: the peer reads
// the refusal's close frame and a clean end, not a pong, a 1009 or a reset,
// long before the close timeout.
func TestRefusedSocketEndsOnThePeersCloseFrame(t *testing.T) {
	const maxFrame = 4 << 10
	s, addr := startServer(t, Config{MaxFrame: maxFrame}, &fakeHandler{
		message: func(c *Conn, data []byte) {
			if string(data) == "refuse" {
				c.Refuse(ClosePolicy, "rate limit ignored")
			}
		},
	})
	s.closeTimeout = time.Minute // far past the read below: the end must come from the close frame
	r := dialRawSocket(t, addr)
	if _, err := r.conn.Write(clientFrame(opText, []byte("refuse"), false)); err != nil {
		t.Fatal(err)
	}
	// The refusal's close frame arrives before anything else is sent, so
	// everything below reaches a refused socket.
	_ = r.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	head := make([]byte, 4)
	if _, err := io.ReadFull(r.br, head); err != nil || head[0]&0x0F != opClose {
		t.Fatalf("first frame %x, %v: want the close frame", head, err)
	}
	if code := int(binary.BigEndian.Uint16(head[2:])); code != ClosePolicy {
		t.Fatalf("closed with %d, want %d", code, ClosePolicy)
	}
	if _, err := r.br.Discard(int(head[1]&0x7F) - 2); err != nil {
		t.Fatal(err)
	}
	var after []byte
	after = append(after, clientFrame(opText, make([]byte, 2*maxFrame), false)...)
	for range 100 {
		after = append(after, clientFrame(opPing, []byte("ping"), false)...)
	}
	after = append(after, clientFrame(opClose, []byte{0x03, 0xE8}, false)...)
	if _, err := r.conn.Write(after); err != nil {
		t.Fatal(err)
	}
	if rest := r.readAll(t); len(rest) != 0 {
		fs, _ := parseFrames(rest)
		t.Fatalf("after its close frame the refused peer got %d more bytes (%d frames, first op %x)", len(rest), len(fs), fs[0].op)
	}
}
