package client

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/wire"
)

// ConnOptions configures [Connect]. The zero value is ready to use; zero
// fields get the defaults below.
type ConnOptions struct {
	// AutoAck acks each message as soon as it is in the Messages channel
	// (coalesced like Conn.Ack). Off by default: ack what you have stored,
	// with Conn.Ack.
	AutoAck bool

	// AckInterval is how long an ack may wait to be sent (default 200ms):
	// acks are coalesced, so at most one ack frame per conversation goes
	// out per interval, carrying the highest seq acked (see Conn.Ack).
	AckInterval time.Duration

	// Buffer is the capacity of the Messages channel (default 256).
	Buffer int

	// MinBackoff and MaxBackoff bound the wait before each reconnect
	// attempt (defaults 100ms and 5s). The n-th consecutive attempt waits a
	// random time between half and all of min(MinBackoff*2^n, MaxBackoff).
	MinBackoff time.Duration
	MaxBackoff time.Duration

	// DialTimeout bounds each dial (default 10s); WriteTimeout bounds each
	// frame written, and each keepalive ping's wait for its pong
	// (default 10s).
	DialTimeout  time.Duration
	WriteTimeout time.Duration

	// PingInterval is how often a WebSocket ping checks the connection
	// (default 30s; negative turns it off).
	PingInterval time.Duration

	// ReadLimit is the largest frame accepted from the server, in bytes
	// (default 4 MiB; negative means no limit).
	ReadLimit int64

	// Delivered holds, per conversation, the highest seq the application
	// already has (from an earlier run, say); messages at or below it are
	// dropped like duplicates. The map is copied.
	Delivered map[string]int64

	// Logger receives reconnects and frames the SDK could not use
	// (default: discarded).
	Logger *slog.Logger
}

func (o ConnOptions) withDefaults() ConnOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.MinBackoff, 100*time.Millisecond)
	def(&o.MaxBackoff, 5*time.Second)
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	def(&o.DialTimeout, 10*time.Second)
	def(&o.WriteTimeout, 10*time.Second)
	def(&o.AckInterval, 200*time.Millisecond)
	if o.PingInterval == 0 {
		o.PingInterval = 30 * time.Second
	}
	if o.Buffer <= 0 {
		o.Buffer = 256
	}
	if o.ReadLimit == 0 {
		o.ReadLimit = 4 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Conn is a device's live connection: one WebSocket at a time, redialed
// when it drops (see the package documentation for the guarantees). It is
// safe for concurrent use.
type Conn struct {
	client *Client
	token  string
	device string // the session's device id: the proxy's routing key
	opts   ConnOptions
	log    *slog.Logger

	ctx    context.Context // ends when Close is called
	cancel context.CancelFunc

	msgs    chan Message
	synced  chan struct{}
	devices chan string // see DevicesChanged
	// callEvents is CallEvents (calls.go).
	callEvents chan CallEvent
	done       chan struct{}
	ackWake    chan struct{} // tells the socket's keepalive goroutine that acks wait

	closeOnce sync.Once
	social    social // presence subscription, read marks, events (presence.go)

	mu     sync.Mutex
	ws     *websocket.Conn // the current socket, nil while reconnecting
	gen    uint64          // counts sockets
	calls  map[string]*call
	ncalls uint64           // counts calls, for call.order
	acks   map[string]int64 // the highest ack asked for, per conversation
	unsent map[string]bool  // conversations whose ack in acks is not written yet
	ackDue bool             // a flush of unsent is scheduled (or attach will write them)
	// lastWrite is closed once the last send frame given a turn is
	// written: each write of send frames waits for the one before, so the
	// frames go out in the order the Sends were called, on one socket and
	// across reconnects (see attach).
	lastWrite chan struct{}
	closing   bool
	err       error // why the Conn ended; nil while it runs

	// Owned by the reader goroutine.
	delivered map[string]int64 // highest seq handed to the application
	overflow  bool             // messages are being skipped until a resync
	attempt   int              // consecutive reconnect attempts
}

// call is a Send waiting for its answer. Sends of the same ID in flight at
// the same time share one call.
type call struct {
	frame   []byte
	order   uint64 // when the call was made: attach writes calls in this order
	gen     uint64 // socket the frame was last written on
	waiters int
	done    chan struct{} // closed once sent or err is set
	sent    Sent
	err     error
}

// Connect opens the device's WebSocket (GET /v1/ws?device=<its id> with the
// session's token) and starts receiving. A refused upgrade is an *Error (e.g. 401
// unauthorized). ctx bounds only this first dial; the Conn lives until
// Close or until the server ends it for good.
func Connect(ctx context.Context, s *Session, opts ConnOptions) (*Conn, error) {
	if s == nil || s.client == nil {
		return nil, errUnbound
	}
	opts = opts.withDefaults()
	c := &Conn{
		client:     s.client,
		token:      s.Token,
		device:     s.DeviceID,
		opts:       opts,
		log:        opts.Logger,
		msgs:       make(chan Message, opts.Buffer),
		synced:     make(chan struct{}, 1),
		devices:    make(chan string, devicesChangedBuffer),
		callEvents: make(chan CallEvent, callEventsBuffer),
		done:       make(chan struct{}),
		ackWake:    make(chan struct{}, 1),
		calls:      make(map[string]*call),
		acks:       make(map[string]int64),
		unsent:     make(map[string]bool),
		lastWrite:  closedChan(),
		delivered:  make(map[string]int64, len(opts.Delivered)),
	}
	for conv, seq := range opts.Delivered {
		c.delivered[conv] = seq
	}
	ws, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.attach(ws)
	go c.run(ws)
	return c, nil
}

// Messages yields the messages for this device, each once and in seq order
// per conversation. It is closed when the Conn ends.
func (c *Conn) Messages() <-chan Message { return c.msgs }

// Synced receives a value each time the server has replayed a connection's
// backlog (after Connect and after each reconnect); values not yet received
// are merged into one. It is closed when the Conn ends.
func (c *Conn) Synced() <-chan struct{} { return c.synced }

// Done is closed when the Conn has ended: after Close, or when the server
// ended it for good. Err says why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is nil while the Conn runs. Afterwards it is ErrClosed after Close, a
// *CloseError for a socket closed with 4001 (device revoked), 4002 (replaced), 4003 (session
// expired) or 1008, or an
// *Error for a reconnect refused by the server (e.g. 401 once the token
// expired).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Send sends a message and waits for the server's answer: the receipt, or
// an *Error (Status 0) from an error frame, in which case nothing was
// stored. If the socket drops first, the message is sent again on the next
// one with the same ID. Send returns ctx.Err() if ctx ends first (the
// message may then be stored or not; send the same ID again to know), or
// Err() if the Conn ends.
func (c *Conn) Send(ctx context.Context, req SendRequest) (Sent, error) {
	if err := req.prepare(); err != nil {
		return Sent{}, err
	}
	frame, err := json.Marshal(newSendFrame(wire.TypeSend, req))
	if err != nil {
		return Sent{}, fmt.Errorf("client: encoding send: %w", err)
	}

	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return Sent{}, err
	}
	cl := c.calls[req.ID]
	var ws *websocket.Conn
	var prev, mine chan struct{}
	if cl == nil {
		c.ncalls++
		cl = &call{frame: frame, order: c.ncalls, done: make(chan struct{})}
		c.calls[req.ID] = cl
		if c.ws != nil {
			ws, cl.gen = c.ws, c.gen
			prev, mine = c.writeTurnLocked()
		}
	}
	cl.waiters++
	c.mu.Unlock()

	if ws != nil {
		// A failed write breaks the socket; the reader notices, and the
		// frame goes out again on the next one.
		<-prev
		_ = c.write(ws, frame)
		close(mine)
	}
	select {
	case <-cl.done:
		return cl.sent, cl.err
	case <-ctx.Done():
		c.mu.Lock()
		if cl.waiters--; cl.waiters == 0 && c.calls[req.ID] == cl {
			delete(c.calls, req.ID)
		}
		c.mu.Unlock()
		return Sent{}, ctx.Err()
	}
}

// Ack tells the server that everything up to seq in the conversation is
// safely stored, so it is not sent again on the next connection. It does
// not write a frame: acks are coalesced, so that an application may ack
// every message without running into the server's per-socket frame limit.
// The Conn keeps the highest seq acked per conversation and writes at most
// one ack frame per conversation every [ConnOptions].AckInterval (200ms by
// default), carrying that seq; Close writes what is still waiting before it
// closes the socket. Acks that would not move the cursor are not sent. The
// highest acks are written again on each new socket after a reconnect, so an
// ack lost with a socket is not lost for good. Ack fails only if ctx is
// already done or the Conn has ended.
func (c *Conn) Ack(ctx context.Context, conversation string, seq int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	c.ackLocked(conversation, seq)
	return nil
}

// ackLocked records an ack and makes sure a flush is scheduled.
func (c *Conn) ackLocked(conversation string, seq int64) {
	if seq <= c.acks[conversation] {
		return
	}
	c.acks[conversation] = seq
	c.unsent[conversation] = true
	if !c.ackDue {
		c.ackDue = true
		select {
		case c.ackWake <- struct{}{}:
		default: // a wake is already waiting
		}
	}
}

// takeUnsentAcksLocked returns the frames of the acks not written yet and
// forgets them: the caller writes them.
func (c *Conn) takeUnsentAcksLocked() [][]byte {
	frames := make([][]byte, 0, len(c.unsent))
	for conv := range c.unsent {
		frames = append(frames, ackBytes(conv, c.acks[conv]))
	}
	clear(c.unsent)
	c.ackDue = false
	return frames
}

// flushAcks writes the acks not written yet on ws, the current socket. A
// failed write breaks the socket, and attach writes every ack again on the
// next one.
func (c *Conn) flushAcks(ws *websocket.Conn) {
	c.mu.Lock()
	if c.ws != ws {
		c.mu.Unlock()
		return // attach writes them on the next socket
	}
	frames := c.takeUnsentAcksLocked()
	c.mu.Unlock()
	for _, f := range frames {
		if c.write(ws, f) != nil {
			return
		}
	}
}

// writeTurnLocked takes the next turn to write send frames: wait for prev
// to be closed, write, then close mine.
func (c *Conn) writeTurnLocked() (prev, mine chan struct{}) {
	prev, mine = c.lastWrite, make(chan struct{})
	c.lastWrite = mine
	return prev, mine
}

func closedChan() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

func ackBytes(conversation string, seq int64) []byte {
	return wire.AppendAck(nil, conversation, seq)
}

// Close writes the acks still waiting (see Ack), closes the socket (code
// 1000), stops reconnecting and waits for the Conn's goroutines to end.
// Pending Sends fail with ErrClosed. Close may be called more than once, and
// after the server ended the Conn.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closing = true
		ws := c.ws
		var acks [][]byte
		if ws != nil {
			acks = c.takeUnsentAcksLocked()
		}
		c.mu.Unlock()
		if ws != nil {
			for _, f := range acks {
				if c.write(ws, f) != nil {
					break
				}
			}
			_ = ws.Close(websocket.StatusNormalClosure, "")
		}
		c.cancel()
	})
	<-c.done
	return nil
}

// write writes one frame, bounded by WriteTimeout and by Close.
func (c *Conn) write(ws *websocket.Conn, frame []byte) error {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.WriteTimeout)
	defer cancel()
	return ws.Write(ctx, websocket.MessageText, frame)
}
