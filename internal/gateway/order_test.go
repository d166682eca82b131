package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// wireFrame is one frame as it arrived on the client's TCP stream.
type wireFrame struct {
	op      byte
	payload []byte
}

// wireClient is a WebSocket client that keeps the raw byte stream the server
// sent, so a test can check framing and order byte by byte. It answers the
// server's close frame (so the server drops the connection at once) and
// otherwise only reads.
type wireClient struct {
	conn   net.Conn
	mu     sync.Mutex // serialises the client's own writes
	stream chan []byte
}

func dialWire(t testing.TB, addr string) *wireClient {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
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
	w := &wireClient{conn: conn, stream: make(chan []byte, 1)}
	go func() {
		var all []byte
		buf := make([]byte, 64<<10)
		answered := false
		for {
			n, err := br.Read(buf)
			all = append(all, buf[:n]...)
			if !answered && closeFrameIn(all) {
				answered = true
				w.send(opClose, []byte{0x03, 0xE8}) // 1000
			}
			if err != nil {
				w.stream <- all
				return
			}
		}
	}()
	return w
}

// send writes one masked client frame (RFC 6455 §5.3: clients mask).
func (w *wireClient) send(op byte, payload []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := appendFrameHeader(nil, op, len(payload))
	b[1] |= 0x80
	mask := [4]byte{1, 2, 3, 4}
	b = append(b, mask[:]...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	_, _ = w.conn.Write(b)
}

// wait returns every byte the server sent, once the connection has ended.
func (w *wireClient) wait(t testing.TB) []byte {
	t.Helper()
	select {
	case b := <-w.stream:
		return b
	case <-time.After(20 * time.Second):
		t.Fatal("the server never ended the connection")
		return nil
	}
}

// parseFrames splits a server's byte stream into frames; it fails on a frame
// that is cut short or masked.
func parseFrames(b []byte) ([]wireFrame, error) {
	var out []wireFrame
	for len(b) > 0 {
		if len(b) < 2 {
			return out, fmt.Errorf("a frame header cut after %d frames", len(out))
		}
		if b[0]&0x80 == 0 || b[0]&0x70 != 0 || b[1]&0x80 != 0 {
			return out, fmt.Errorf("frame %d: bad header % x", len(out), b[:2])
		}
		op, n, h := b[0]&0x0F, int(b[1]&0x7F), 2
		switch n {
		case 126:
			if len(b) < 4 {
				return out, fmt.Errorf("frame %d: length cut", len(out))
			}
			n, h = int(binary.BigEndian.Uint16(b[2:4])), 4
		case 127:
			if len(b) < 10 {
				return out, fmt.Errorf("frame %d: length cut", len(out))
			}
			n, h = int(binary.BigEndian.Uint64(b[2:10])), 10
		}
		if len(b) < h+n {
			return out, fmt.Errorf("frame %d (opcode %d, %d bytes) cut after %d bytes", len(out), op, n, len(b)-h)
		}
		out = append(out, wireFrame{op, b[h : h+n]})
		b = b[h+n:]
	}
	return out, nil
}

func closeFrameIn(b []byte) bool {
	fs, _ := parseFrames(b)
	for _, f := range fs {
		if f.op == opClose {
			return true
		}
	}
	return false
}

// TestOneSocketsFramesGoOutWholeInOrderAndNothingAfterClose: several
// goroutines write data frames to one socket while pings and pongs go out
// and the socket is closed. On the wire every frame must be whole, each
// writer's frames must arrive in its order, every Write that returned nil
// must arrive, and the close frame must be the last thing sent. The flusher
// used to hand a batch to nbio after releasing the socket's lock, so a later
// batch and the close frame (written by another goroutine) could overtake it:
// seqs arrived out of order, or after the close frame, or never.
func TestOneSocketsFramesGoOutWholeInOrderAndNothingAfterClose(t *testing.T) {
	const (
		rounds  = 20
		writers = 4
		frames  = 400
	)
	conns := make(chan *Conn, 1)
	var s *Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ws", func(w http.ResponseWriter, r *http.Request) { _, _ = s.Upgrade(w, r, nil) })
	s = New(Config{Addr: "127.0.0.1:0", Handler: mux, MaxQueued: 256 << 20}, &fakeHandler{open: func(c *Conn) { conns <- c }})
	// Hand the scheduler to the other writers between taking a batch and
	// writing it, where an unserialised flush lets them overtake.
	var n atomic.Int64
	s.flushHook = func() {
		if n.Add(1)%3 == 0 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(ctxT(t)) })

	for round := range rounds {
		wc := dialWire(t, s.Addr().String())
		c := <-conns
		var (
			wg   sync.WaitGroup
			sent [writers]int // frames each writer's Write accepted
		)
		for w := range writers {
			wg.Go(func() {
				for k := range frames {
					// Sizes from a few bytes to a few KiB: batches of many sizes.
					msg := fmt.Sprintf("w%d %d %s", w, k, strings.Repeat("x", (k*37+w*101)%3000))
					if err := c.Write([]byte(msg)); err != nil {
						if !errors.Is(err, ErrClosed) {
							t.Errorf("Write: %v", err)
						}
						return
					}
					sent[w]++
				}
			})
		}
		wg.Go(func() { // the sweeper's pings
			for range 50 {
				if c.writeFrame(opPing, nil) != nil {
					return
				}
			}
		})
		wg.Go(func() { // pongs, answering the client's pings on the poller
			for range 50 {
				wc.send(opPing, []byte("p"))
			}
		})
		wg.Go(func() {
			time.Sleep(time.Duration(round%5) * time.Millisecond)
			c.Close(CloseNormal, "done")
		})
		wg.Wait()

		fs, err := parseFrames(wc.wait(t))
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		next := [writers]int{}
		closed := false
		for i, f := range fs {
			if closed {
				t.Fatalf("round %d: frame %d (opcode %d, %.12q) came after the close frame", round, i, f.op, f.payload)
			}
			switch f.op {
			case opClose:
				closed = true
			case opText:
				var w, k int
				if _, err := fmt.Sscanf(string(f.payload), "w%d %d", &w, &k); err != nil || w < 0 || w >= writers {
					t.Fatalf("round %d: frame %d is not a writer's: %.20q", round, i, f.payload)
				}
				if k != next[w] {
					t.Fatalf("round %d: writer %d's frame %d arrived where its frame %d was due", round, w, k, next[w])
				}
				next[w]++
			case opPing, opPong:
			default:
				t.Fatalf("round %d: frame %d has opcode %d", round, i, f.op)
			}
		}
		if !closed {
			t.Fatalf("round %d: no close frame in %d frames", round, len(fs))
		}
		for w := range writers {
			if next[w] != sent[w] {
				t.Fatalf("round %d: writer %d had %d writes accepted but %d arrived before the close frame",
					round, w, sent[w], next[w])
			}
		}
	}
}

// TestSlowConsumerThatKeepsReadingGetsItsCloseCode: a socket closed as a slow
// consumer gets the frames queued before the close, then the close frame
// with 4008 "slow consumer", as long as it keeps reading, even when reading
// them takes longer than the close timeout. The TCP connection used to be
// dropped closeTimeout after the close whatever the peer did, so a client
// still reading its queue saw a bare EOF and not why it was dropped.
func TestSlowConsumerThatKeepsReadingGetsItsCloseCode(t *testing.T) {
	conns := make(chan *Conn, 1)
	var s *Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ws", func(w http.ResponseWriter, r *http.Request) { _, _ = s.Upgrade(w, r, nil) })
	s = New(Config{Addr: "127.0.0.1:0", Handler: mux, MaxQueued: 512 << 10}, &fakeHandler{open: func(c *Conn) {
		// Small kernel buffers on both sides: the queue drains only as
		// fast as the client reads.
		_ = c.nbc.SetWriteBuffer(32 << 10)
		conns <- c
	}})
	s.closeTimeout = 200 * time.Millisecond
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(ctxT(t)) })

	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(32 << 10)
		}
		return c, err
	}}}
	ws, _, err := websocket.Dial(ctxT(t), "ws://"+s.Addr().String()+"/v1/ws", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.CloseNow() })
	c := <-conns

	frame := bytes.Repeat([]byte("q"), 16<<10)
	written := 0
	for {
		if err := c.Write(frame); err != nil {
			if !errors.Is(err, ErrSlowConsumer) {
				t.Fatalf("Write: %v", err)
			}
			break
		}
		written++
	}
	// Read at ~800 KB/s: the queue takes several close timeouts to drain.
	for got := 0; ; got++ {
		_, _, err := ws.Read(ctxT(t))
		if err != nil {
			var ce websocket.CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("after %d of %d frames the connection ended without a close frame: %v", got, written, err)
			}
			if ce.Code != CloseSlowConsumer || ce.Reason != "slow consumer" || got != written {
				t.Fatalf("after %d of %d frames: closed with %d %q, want all frames and then 4008", got, written, ce.Code, ce.Reason)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestClosedPeerThatStopsReadingIsDropped: after a close, a peer that takes
// no byte for the close timeout (it stopped reading, with frames queued) has
// its TCP connection dropped and OnClose runs.
func TestClosedPeerThatStopsReadingIsDropped(t *testing.T) {
	conns := make(chan *Conn, 1)
	closed := make(chan struct{})
	var s *Server
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ws", func(w http.ResponseWriter, r *http.Request) { _, _ = s.Upgrade(w, r, nil) })
	s = New(Config{Addr: "127.0.0.1:0", Handler: mux, MaxQueued: 64 << 20}, &fakeHandler{
		open:  func(c *Conn) { conns <- c },
		close: func(*Conn) { close(closed) },
	})
	s.closeTimeout = 100 * time.Millisecond
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Shutdown(ctxT(t)) })
	_ = dial(t, s.Addr().String()) // never reads
	c := <-conns
	frame := bytes.Repeat([]byte("s"), 64<<10)
	for c.queued.Load() < 1<<20 { // past what the kernel takes: frames wait in nbio
		if err := c.Write(frame); err != nil {
			t.Fatal(err)
		}
	}
	c.Close(CloseNormal, "bye")
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("a peer that stopped reading was never dropped after the close")
	}
}

// TestWaitQueuedReturnsWhenThePeerReadsOrTheSocketCloses: a writer waiting
// for room is released once the peer has read enough, and with ErrClosed
// when the socket closes while it waits.
func TestWaitQueuedReturnsWhenThePeerReadsOrTheSocketCloses(t *testing.T) {
	conns := make(chan *Conn, 1)
	_, addr := startServer(t, Config{MaxQueued: 64 << 20}, &fakeHandler{open: func(c *Conn) { conns <- c }})
	// fill writes until frames wait in nbio even once the kernel's buffers
	// (a few MiB on loopback) are full.
	fill := func(c *Conn) {
		frame := bytes.Repeat([]byte("w"), 64<<10)
		for c.queued.Load() < 1<<20 {
			for c.queued.Load() < 4<<20 {
				if err := c.Write(frame); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(20 * time.Millisecond) // the flusher and the kernel take what they can
		}
	}
	wait := func(c *Conn) chan error {
		done := make(chan error, 1)
		go func() { done <- c.WaitQueued(ctxT(t), 0) }()
		return done
	}

	t.Run("a waiting writer is released when the peer reads", func(t *testing.T) {
		ws := dial(t, addr)
		c := <-conns
		fill(c)
		done := wait(c)
		for range 10 {
			select {
			case err := <-done:
				t.Fatalf("WaitQueued returned %v while nobody read", err)
			default:
			}
			time.Sleep(time.Millisecond)
		}
		ws.SetReadLimit(-1)
		go func() {
			for {
				if _, _, err := ws.Read(context.Background()); err != nil {
					return
				}
			}
		}()
		select {
		case err := <-done:
			if err != nil || c.queued.Load() > 0 {
				t.Fatalf("WaitQueued = %v with %d bytes queued, want nil with none", err, c.queued.Load())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("WaitQueued still waits after the peer read everything")
		}
	})
	t.Run("a waiting writer gets ErrClosed when the socket closes", func(t *testing.T) {
		_ = dial(t, addr) // never reads
		c := <-conns
		fill(c)
		done := wait(c)
		time.Sleep(time.Millisecond)
		c.Close(CloseNormal, "bye")
		select {
		case err := <-done:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("WaitQueued = %v after Close, want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("WaitQueued still waits after Close")
		}
	})
}
