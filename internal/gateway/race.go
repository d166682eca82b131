//go:build race

package gateway

import (
	"net"
	"sync"
)

// raceHandoff makes nbio's connection handoff visible to the race detector.
// nbio builds a connection on its accept goroutine and then reads it on a
// poller goroutine; the kernel's epoll orders the two, but the detector only
// sees Go synchronisation and reports the handoff as a race. A mutex touched
// after the accept side is done (open, for the engine's OnOpen; see
// handoff.hook) and before every read (read, for onData) supplies the edge.
// Built only with -race, so production binaries pay nothing.
func raceHandoff() (open func(net.Conn), read func()) {
	var mu sync.Mutex
	touch := func() {
		mu.Lock()
		mu.Unlock() //nolint:staticcheck // an empty critical section is the point
	}
	return func(net.Conn) { touch() }, touch
}
