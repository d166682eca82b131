package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/switchboard-chat/switchboard/wire"
)

// run is the Conn's reader goroutine: it reads one socket until it drops,
// then redials, until Close or a close for good.
func (c *Conn) run(ws *websocket.Conn) {
	for {
		err := c.serve(ws)
		gen, closing := c.detach()
		if closing {
			c.end(ErrClosed)
			return
		}
		var ce websocket.CloseError
		errors.As(err, &ce)
		switch code := int(websocket.CloseStatus(err)); code {
		case CloseDeviceRevoked, CloseReplaced, CloseSessionExpired, ClosePolicyViolation:
			c.end(&CloseError{Code: code, Reason: ce.Reason})
			return
		case CloseTooBig:
			c.failWrittenOn(gen, &CloseError{Code: code, Reason: ce.Reason})
		}
		resync := c.overflow
		c.overflow = false
		if resync {
			c.log.Info("switchboard: resyncing after the Messages buffer filled")
		} else {
			c.log.Info("switchboard: socket dropped; reconnecting", "err", err)
		}
		ws, err = c.reconnect(resync)
		if err != nil {
			c.end(err)
			return
		}
	}
}

// serve reads frames from ws until it fails. A keepalive goroutine runs
// beside it and is gone when serve returns.
func (c *Conn) serve(ws *websocket.Conn) error {
	ctx, cancel := context.WithCancel(c.ctx)
	overflowed := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() { c.keep(ctx, ws, overflowed) })
	defer func() {
		cancel()
		_ = ws.CloseNow()
		wg.Wait()
	}()
	for {
		typ, data, err := ws.Read(c.ctx)
		if err != nil {
			return err
		}
		if typ == websocket.MessageText {
			c.handle(ws, data, overflowed)
		}
	}
}

// handle acts on one frame from the server.
func (c *Conn) handle(ws *websocket.Conn, data []byte, overflowed chan<- struct{}) {
	var f serverFrame
	if err := json.Unmarshal(data, &f); err != nil {
		c.log.Warn("switchboard: unreadable frame", "err", err)
		return
	}
	switch f.Type {
	case wire.TypeMessage, wire.TypeEvent: // events are seq-ordered with the messages
		c.deliver(ws, f.message(), overflowed)
	case wire.TypeSynced:
		if !c.overflow {
			c.attempt = 0
			select {
			case c.synced <- struct{}{}:
			default:
			}
		}
	case wire.TypeDevicesChanged:
		c.devicesChanged(f.UserID)
	case wire.TypeSent:
		c.resolve(f.ID, f.sent(), nil)
	case wire.TypeCall:
		c.callEvent(&f)
	case wire.TypePresence, wire.TypeTyping, wire.TypeReceipt:
		c.handleSocial(f.Type, data) // presence.go
	case wire.TypeError:
		if f.CallID != "" {
			c.callEvent(&f)
		} else if f.ID == "" || !c.resolve(f.ID, Sent{}, f.err()) {
			c.log.Warn("switchboard: error frame", "id", f.ID, "code", f.Code, "message", f.Message)
		}
	}
	// pong, and frame types this SDK does not know yet, need nothing.
}

// deliver hands m to the application unless it is a duplicate. It never
// blocks: when the channel is full it starts skipping messages until the
// keepalive goroutine sees room again and ends the socket for a resync.
func (c *Conn) deliver(ws *websocket.Conn, m Message, overflowed chan<- struct{}) {
	if c.overflow || m.Seq <= c.delivered[m.Conversation] {
		return
	}
	select {
	case c.msgs <- m:
		c.delivered[m.Conversation] = m.Seq
		if c.opts.AutoAck {
			c.mu.Lock()
			c.ackLocked(m.Conversation, m.Seq)
			c.mu.Unlock()
		}
	default:
		c.overflow = true
		overflowed <- struct{}{}
	}
}

// resolve answers the Send waiting for id, if any.
func (c *Conn) resolve(id string, sent Sent, err error) bool {
	c.mu.Lock()
	cl := c.calls[id]
	delete(c.calls, id)
	c.mu.Unlock()
	if cl == nil {
		return false
	}
	if err != nil {
		cl.err = err
	} else {
		cl.sent = sent
	}
	close(cl.done)
	return true
}

// keep pings ws now and then, writes the acks waiting at most
// AckInterval after the first of them, and once told that the Messages
// channel overflowed, closes ws when the channel is half empty again.
func (c *Conn) keep(ctx context.Context, ws *websocket.Conn, overflowed <-chan struct{}) {
	var ping, drain, flush <-chan time.Time
	if c.opts.PingInterval > 0 {
		t := time.NewTicker(c.opts.PingInterval)
		defer t.Stop()
		ping = t.C
	}
	ackTimer := time.NewTimer(c.opts.AckInterval)
	ackTimer.Stop()
	defer ackTimer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.ackWake:
			if flush == nil {
				ackTimer.Reset(c.opts.AckInterval)
				flush = ackTimer.C
			}
		case <-flush:
			flush = nil
			c.flushAcks(ws)
		case <-ping:
			pctx, cancel := context.WithTimeout(ctx, c.opts.WriteTimeout)
			err := ws.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				c.log.Info("switchboard: ping failed", "err", err)
				_ = ws.CloseNow()
				return
			}
		case <-overflowed:
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			drain, overflowed = t.C, nil
		case <-drain:
			if len(c.msgs) <= cap(c.msgs)/2 {
				// The acks first, so the replay on the next socket starts
				// from them.
				c.flushAcks(ws)
				_ = ws.Close(websocket.StatusNormalClosure, "resync")
				return
			}
		}
	}
}

// attach makes ws the current socket and writes on it the acks and the
// unanswered sends of the previous ones. The sends go out in the order they
// were called (pipelined sends into one conversation keep their order, so
// do their seqs), and before any Send that finds ws. It reports false if
// the Conn is closing.
func (c *Conn) attach(ws *websocket.Conn) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	c.ws = ws
	c.gen++
	// Every ack again, not only the unsent: one lost with the last socket
	// is not lost for good.
	clear(c.unsent)
	c.ackDue = false
	frames := make([][]byte, 0, len(c.acks)+len(c.calls))
	for conv, seq := range c.acks {
		frames = append(frames, ackBytes(conv, seq))
	}
	frames = append(frames, c.socialFrames()...) // presence.go
	calls := slices.SortedFunc(maps.Values(c.calls), func(a, b *call) int { return cmp.Compare(a.order, b.order) })
	for _, cl := range calls {
		cl.gen = c.gen
		frames = append(frames, cl.frame)
	}
	prev, mine := c.writeTurnLocked()
	c.mu.Unlock()
	defer close(mine)
	<-prev
	for _, f := range frames {
		if c.write(ws, f) != nil {
			break // the reader will see the socket is gone
		}
	}
	return true
}

// detach forgets the current socket and returns its generation.
func (c *Conn) detach() (gen uint64, closing bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ws = nil
	return c.gen, c.closing
}

// failWrittenOn fails the unanswered sends last written on socket gen.
func (c *Conn) failWrittenOn(gen uint64, err error) {
	c.mu.Lock()
	var failed []*call
	for id, cl := range c.calls {
		if cl.gen == gen {
			failed = append(failed, cl)
			delete(c.calls, id)
		}
	}
	c.mu.Unlock()
	for _, cl := range failed {
		cl.err = err
		close(cl.done)
	}
}

// end records why the Conn ended, fails what waits and closes the
// channels.
func (c *Conn) end(err error) {
	c.mu.Lock()
	c.err = err
	c.ws = nil
	calls := c.calls
	c.calls = make(map[string]*call)
	c.mu.Unlock()
	for _, cl := range calls {
		cl.err = err
		close(cl.done)
	}
	c.cancel()
	close(c.msgs)
	close(c.synced)
	close(c.devices)
	close(c.callEvents)
	close(c.done)
	if err != ErrClosed {
		c.log.Info("switchboard: connection ended", "err", err)
	}
}

// reconnect dials until it gets a socket, after a backoff before each
// attempt (none before the first if immediate). It gives up on Close or on
// a refusal that will not change by retrying.
func (c *Conn) reconnect(immediate bool) (*websocket.Conn, error) {
	for {
		if !immediate {
			d := backoff(c.attempt, c.opts.MinBackoff, c.opts.MaxBackoff)
			c.attempt++
			t := time.NewTimer(d)
			select {
			case <-c.ctx.Done():
				t.Stop()
				return nil, ErrClosed
			case <-t.C:
			}
		}
		immediate = false
		ws, err := c.dial(c.ctx)
		switch {
		case err == nil:
			if !c.attach(ws) {
				_ = ws.CloseNow()
				return nil, ErrClosed
			}
			return ws, nil
		case c.ctx.Err() != nil:
			return nil, ErrClosed
		case permanent(err):
			return nil, err
		}
		c.log.Info("switchboard: reconnect failed", "attempt", c.attempt, "err", err)
	}
}

// dial opens one socket.
func (c *Conn) dial(ctx context.Context) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	ws, resp, err := websocket.Dial(ctx, c.client.wsURL(c.device), &websocket.DialOptions{
		HTTPClient: c.client.hc,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + c.token}},
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, responseError(resp)
		}
		return nil, fmt.Errorf("client: dialing %s: %w", c.client.wsURL(c.device), err)
	}
	ws.SetReadLimit(max(c.opts.ReadLimit, -1))
	return ws, nil
}

// permanent reports whether a failed dial should not be retried: the server
// refused with a 4xx status other than 408 and 429.
func permanent(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status >= 400 && e.Status < 500 &&
		e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// backoff is the wait before reconnect attempt n (0-based): a random
// duration in [d/2, d] where d = min(lo*2^n, hi).
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := hi
	if n < 32 {
		if x := lo << n; x > 0 && x < hi {
			d = x
		}
	}
	return d/2 + rand.N(d-d/2+1)
}
