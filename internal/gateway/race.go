//go:build race

package gateway

import (
	"net"
	"sync"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
)

// raceHandoff makes nbio's connection handoff visible to the race detector.
// nbio builds a connection on its accept goroutine and then reads it on a
// poller goroutine; the kernel's epoll orders the two, but the detector only
// sees Go synchronisation and reports the handoff as a race. A mutex touched
// after the accept side is done and before every read supplies the edge.
// Built only with -race, so production binaries pay nothing. It returns the
// accept side's half, for the engine's OnOpen (see handoff.hook).
func raceHandoff(e *nbhttp.Engine) func(net.Conn) {
	var mu sync.Mutex
	e.Engine.OnData(func(c *nbio.Conn, data []byte) {
		mu.Lock()
		mu.Unlock() //nolint:staticcheck // an empty critical section is the point
		c.DataHandler()(c, data)
	})
	return func(net.Conn) {
		mu.Lock()
		mu.Unlock() //nolint:staticcheck
	}
}
