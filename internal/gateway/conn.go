package gateway

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

// Conn is one upgraded WebSocket. Its methods are safe for concurrent use.
type Conn struct {
	srv   *Server
	ws    *websocket.Conn
	nbc   *nbio.Conn
	state any
	id    uint64

	last    atomic.Int64 // unix nanoseconds of the last inbound bytes
	pinged  atomic.Int64 // unix nanoseconds of the last ping we sent
	queued  atomic.Int64 // outbound bytes handed to nbio that the kernel has not taken yet
	backlog atomic.Int64 // inbound bytes read but not yet handled (approximate)
	ready   atomic.Bool  // set last in Upgrade; see session.Parse
	closing atomic.Bool  // a close frame was sent or received: no more writes
	dropped atomic.Bool  // aborted or refused: frames still queued for OnMessage are not handled
	shut    bool         // the close frame was taken for writing: nothing may follow it (wmu)
	masks   maskScan     // inbound frame boundaries (poller only; see mask.go)

	drain atomic.Pointer[drainWaiter] // the goroutine in WaitQueued, if any

	// omu makes the socket's output one writer: it is held from taking the
	// pending frames until they are handed to nbio, so batches (and the
	// control frames written between them) reach nbio in the order they
	// were taken. Lock order: omu, then wmu.
	omu  sync.Mutex
	wmu  sync.Mutex
	wbuf *[]byte // encoded frames waiting for the flusher; nil when there are none (wmu)
}

// drainWaiter is a WaitQueued call waiting for the socket's queue to fall
// to limit bytes; ch is closed when it does or the socket closes.
type drainWaiter struct {
	limit int64
	ch    chan struct{}
}

// State is the value passed to Upgrade (the node's per-device session).
func (c *Conn) State() any { return c.state }

// RemoteAddr is the peer's address (NGINX's, behind the proxy).
func (c *Conn) RemoteAddr() net.Addr { return c.nbc.RemoteAddr() }

// Write queues one text frame. It is safe from any goroutine; frames written
// by one goroutine arrive in order, and frame may be reused after Write
// returns (it was copied or written). A frame Write accepted (nil error)
// reaches the peer before the close frame; once the close frame is taken
// for writing, Write returns ErrClosed. If more than Config.MaxQueued bytes
// are already waiting for this socket, the socket is closed with 4008 "slow
// consumer" and ErrSlowConsumer is returned; a sender of many frames avoids
// that with WaitQueued.
func (c *Conn) Write(frame []byte) error {
	if c.closing.Load() {
		return ErrClosed
	}
	n := int64(len(frame) + serverFrameOverhead(len(frame)))
	// A frame is always accepted while nothing is queued, so one frame larger
	// than MaxQueued still reaches a socket that keeps up.
	if q := c.queued.Load(); q > 0 && q+n > int64(c.srv.cfg.MaxQueued) {
		c.Close(CloseSlowConsumer, "slow consumer")
		return ErrSlowConsumer
	}
	c.queued.Add(n)
	c.wmu.Lock()
	if c.shut { // Close ran since the check above
		c.wmu.Unlock()
		c.queued.Add(-n)
		return ErrClosed
	}
	first := c.wbuf == nil
	if first {
		c.wbuf = framePool.Get().(*[]byte)
	}
	b := appendFrameHeader(*c.wbuf, opText, len(frame))
	*c.wbuf = append(b, frame...)
	c.wmu.Unlock()
	if first {
		c.srv.flusher.schedule(c)
	}
	return nil
}

// WaitQueued returns once at most limit outbound bytes wait for this socket
// (bytes written and not yet taken by the kernel; Config.MaxQueued bounds
// them), or with ErrClosed once the socket is closing, or with ctx's error.
// A writer of many frames (the node's backlog replay) calls it before each
// frame, so it goes as fast as the peer reads and never trips the
// slow-consumer close. The check is one atomic load while there is room;
// only a wait allocates. One goroutine at a time may wait on a Conn.
func (c *Conn) WaitQueued(ctx context.Context, limit int) error {
	for {
		if c.closing.Load() {
			return ErrClosed
		}
		if c.queued.Load() <= int64(limit) {
			return nil
		}
		w := &drainWaiter{limit: int64(limit), ch: make(chan struct{})}
		if !c.drain.CompareAndSwap(nil, w) {
			return errConcurrentWait
		}
		// Checked again now that w is published: a write completed or a
		// close started before it could see w.
		if c.queued.Load() <= int64(limit) || c.closing.Load() {
			c.drain.CompareAndSwap(w, nil)
			continue
		}
		select {
		case <-w.ch:
		case <-ctx.Done():
			c.drain.CompareAndSwap(w, nil)
			return ctx.Err()
		}
	}
}

// MaxQueued is the outbound bytes this socket may have waiting before it is
// closed as a slow consumer (Config.MaxQueued).
func (c *Conn) MaxQueued() int { return c.srv.cfg.MaxQueued }

// wakeDrain releases the WaitQueued call, if any, when the queue is down to
// its limit or force is set (the socket is closing). It runs under nbio's
// lock of the socket (onWrittenSize), so it only closes a channel.
func (c *Conn) wakeDrain(queued int64, force bool) {
	if w := c.drain.Load(); w != nil && (force || queued <= w.limit) && c.drain.CompareAndSwap(w, nil) {
		close(w.ch)
	}
}

// flush hands the pending frames to nbio in one write.
func (c *Conn) flush() {
	c.omu.Lock()
	c.wmu.Lock()
	pb := c.wbuf
	c.wbuf = nil
	c.wmu.Unlock()
	if pb != nil {
		if h := c.srv.flushHook; h != nil {
			h()
		}
		_, _ = c.nbc.Write(*pb) // a failed write closes the socket; OnClose follows
		putFrameBuf(pb)
	}
	c.omu.Unlock()
}

func putFrameBuf(pb *[]byte) {
	if cap(*pb) <= maxPooledFrame {
		*pb = (*pb)[:0]
		framePool.Put(pb)
	}
}

// Close starts the close handshake with code and reason (cut to 123 bytes).
// Frames queued before Close are still delivered first, then the close
// frame; nothing after it. The peer's frames are still handled until the
// handshake ends. The TCP connection is dropped when the peer answers, or
// once it has taken no queued byte for closeTimeout (so a peer that keeps
// reading gets everything up to the close frame, its code included), or
// closeDrainMax after Close in any case (see close.go). Calling Close
// again, or after the peer closed, does nothing.
func (c *Conn) Close(code int, reason string) {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	c.wakeDrain(0, true)
	c.writeClose(code, reason)
	start := nanotime()
	c.watchClose(start, c.queued.Load())
}

// Refuse is Close for a peer that broke a limit: the peer's frames that
// follow are not handled, nor even parsed once the current read is done
// (the node stops spending on them at once, onData), but
// the connection is kept until the handshake ends as after Close, so that
// the close frame reaches the peer: dropping a connection whose peer's
// bytes are still unread sends a reset, which can overtake the close frame.
func (c *Conn) Refuse(code int, reason string) {
	c.dropped.Store(true)
	c.Close(code, reason)
}

// watchClose drops the TCP connection of a closing socket when the peer made
// no progress for closeTimeout: queued, which only falls after the close
// frame, is where it was at the last look (the close frame reached the
// kernel and no answer came, or the peer stopped reading). A closed
// connection's Close does nothing, so a late timer is harmless.
func (c *Conn) watchClose(start, queued int64) {
	time.AfterFunc(c.srv.closeTimeout, func() {
		q := c.queued.Load()
		if q >= queued || nanotime()-start >= int64(closeDrainMax) {
			_ = c.nbc.Close()
			return
		}
		c.watchClose(start, q)
	})
}

// abort sends a close frame and drops the TCP connection at once, for a peer
// that is not expected to answer. Frames it sent that wait for OnMessage are
// not handled.
func (c *Conn) abort(code int, reason string) {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	c.dropped.Store(true)
	c.wakeDrain(0, true)
	c.writeClose(code, reason)
	_ = c.nbc.Close()
}

func (c *Conn) writeClose(code int, reason string) {
	c.srv.closes.add(code)
	var buf [2 + maxCloseReason]byte
	_ = c.writeFrame(opClose, closePayload(&buf, code, reason))
}

// closePayload writes a close frame's payload, code then reason (cut to
// maxCloseReason), into buf and returns it.
func closePayload(buf *[2 + maxCloseReason]byte, code int, reason string) []byte {
	binary.BigEndian.PutUint16(buf[:2], uint16(code))
	n := copy(buf[2:], closeReason(reason))
	return buf[:2+n]
}

// WebSocket opcodes the gateway writes (RFC 6455 §5.2).
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// framePool holds encode buffers for outbound frames. nbio's own
// websocket.Conn.WriteMessage does the same job but allocates twice per frame.
var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledFrame = 64 << 10

// writeControl writes a ping or a pong under the same bound as Write: past
// MaxQueued the socket is closed with 4008 and nothing is written. Every
// byte queued for a socket counts, so a peer that makes the node answer
// (pings) and never reads cannot grow the queue past the bound either.
func (c *Conn) writeControl(op byte, payload []byte) error {
	n := int64(len(payload) + serverFrameOverhead(len(payload)))
	if q := c.queued.Load(); q > 0 && q+n > int64(c.srv.cfg.MaxQueued) {
		c.Close(CloseSlowConsumer, "slow consumer")
		return ErrSlowConsumer
	}
	return c.writeFrame(op, payload)
}

// writeFrame encodes one unfragmented, unmasked control frame and hands it
// to nbio at once, after any pending data frames, in a single Write under
// omu: nbio writes what the kernel takes and copies the rest to the socket's
// queue, so frames never interleave and never overtake one another. After
// the close frame nothing is written (ErrClosed). Every frame counts as
// queued until nbio reports it written.
func (c *Conn) writeFrame(op byte, payload []byte) error {
	c.omu.Lock()
	defer c.omu.Unlock()
	c.wmu.Lock()
	if c.shut {
		c.wmu.Unlock()
		return ErrClosed
	}
	c.shut = op == opClose
	pb := c.wbuf // control frames go after the data frames written before them
	c.wbuf = nil
	c.wmu.Unlock()
	if pb == nil {
		pb = framePool.Get().(*[]byte)
	}
	c.queued.Add(int64(len(payload) + serverFrameOverhead(len(payload))))
	b := appendFrameHeader(*pb, op, len(payload))
	*pb = append(b, payload...)
	_, err := c.nbc.Write(*pb)
	putFrameBuf(pb)
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return ErrClosed
		}
		return fmt.Errorf("gateway: write: %w", err)
	}
	return nil
}

func appendFrameHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op) // FIN: never fragmented
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 65535:
		return append(b, 126, byte(n>>8), byte(n))
	default:
		return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
	}
}

// session is the nbio connection's session after Upgrade (the same memory
// as the Conn under another method set): nbio's engine passes every read of
// the socket to Parse and calls CloseAndClean on close. It lets the gateway
// see inbound bytes before the WebSocket parser does.
type session Conn

func (h *session) UnderlayerConn() net.Conn { return h.ws.UnderlayerConn() }
func (h *session) CloseAndClean(err error)  { h.ws.CloseAndClean(err) }

// Parse runs on the poller goroutine for every read.
func (h *session) Parse(data []byte) error {
	c := (*Conn)(h)
	// nbio publishes the session with a plain store, so the poller may see
	// the pointer before the fields it points to. ready is stored last in
	// Upgrade; loading it orders everything after. It is already true in
	// practice: the store happened before we could receive the bytes.
	for !c.ready.Load() {
		runtime.Gosched()
	}
	c.last.Store(nanotime())
	// Count bytes read but not yet consumed by OnMessage. With nothing on
	// the socket's job list every earlier complete frame was handled; only a
	// partial frame (≤ MaxFrame) may remain, so the count can restart.
	if c.nbc.ExecuteLen() == 0 {
		c.backlog.Store(0)
	}
	if c.dropped.Load() {
		// A refused socket's bytes are only followed, unparsed, to the
		// peer's close frame, its answer, which ends the handshake: a
		// flooding peer costs a read and a header scan per 64 KiB instead
		// of nbio's parse of every frame until the close times out.
		if !c.masks.scan(data) || c.masks.closed {
			_ = c.nbc.Close()
		}
		return nil
	}
	c.backlog.Add(int64(len(data)))
	if !c.masks.scan(data) {
		c.abort(CloseProtocolError, "client frames must be masked")
		return errUnmasked
	}
	// Parse first: an oversized frame must get its 1009, not a 1008.
	if err := c.ws.Parse(data); err != nil {
		return err
	}
	if c.backlog.Load() > int64(backlogFrames*c.srv.cfg.MaxFrame+nbio.DefaultReadBufferSize) {
		c.abort(ClosePolicy, "too many messages in flight")
		return errBacklog
	}
	return nil
}
