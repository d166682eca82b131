package gateway

import (
	"log/slog"
	"net"
	"sync"
	"time"
)

// listener wraps the engine's net.Listener for two reasons nbio leaves open:
//
//   - nbio's accept loop retries a failing Accept immediately and forever
//     while the engine runs. With EMFILE (this box caps a process at 20,000
//     open files, and we aim at 19,500 sockets) that is a busy loop logging an
//     error per turn. Here a failing Accept backs off 5 ms…1 s, like net/http.
//   - Shutdown must stop accepting before the engine stops. Closing the real
//     listener early would make nbio's loop spin on "use of closed network
//     connection", so after stopAccepting Accept parks until the engine closes
//     the listener (by then nbio's loop sees its shutdown flag and exits).
//
// It also tells the handoff tracker when the accept goroutine is done with
// the connection it returned last (handoff.go).
type listener struct {
	net.Listener
	log     *slog.Logger
	handoff *handoff

	stopOnce  sync.Once
	stop      chan struct{} // closed by stopAccepting
	closeOnce sync.Once
	closed    chan struct{} // closed by Close (the engine stopping)
}

func newListener(ln net.Listener, log *slog.Logger, h *handoff) *listener {
	return &listener{
		Listener: ln,
		log:      log,
		handoff:  h,
		stop:     make(chan struct{}),
		closed:   make(chan struct{}),
	}
}

func (l *listener) Accept() (net.Conn, error) {
	l.handoff.finished()
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err == nil {
			return c, nil
		}
		select {
		case <-l.stop:
			<-l.closed
			return nil, err
		default:
		}
		if delay == 0 {
			delay = 5 * time.Millisecond
		} else if delay *= 2; delay > time.Second {
			delay = time.Second
		}
		l.log.Warn("gateway: accept failed, retrying", "err", err, "in", delay)
		select {
		case <-time.After(delay):
		case <-l.stop:
		}
	}
}

// stopAccepting closes the socket so the kernel refuses new connections.
func (l *listener) stopAccepting() {
	l.stopOnce.Do(func() {
		close(l.stop)
		_ = l.Listener.Close()
	})
}

// Close is called by the engine when it stops.
func (l *listener) Close() error {
	l.stopAccepting()
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}
