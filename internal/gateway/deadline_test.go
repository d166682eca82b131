package gateway

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestUpgradedSocketsOutliveRequestTimeout: RequestTimeout bounds the wait
// for a request, never an upgraded socket. nbio arms a new connection's read
// deadline after handing it to the poller, which may already have read the
// request and upgraded it (see listener.go); a socket upgraded in that window
// used to be closed RequestTimeout later while healthy and idle.
func TestUpgradedSocketsOutliveRequestTimeout(t *testing.T) {
	const (
		sockets        = 1000
		requestTimeout = 300 * time.Millisecond
		spinners       = 4
	)
	var opened, closed atomic.Int32
	s, addr := startServer(t, Config{
		RequestTimeout: requestTimeout,
		// No ping, no ping timeout inside the test: on a loaded box a
		// client could be late with a pong, and only a stray request
		// deadline may close a socket here.
		PingInterval: time.Minute,
	}, &fakeHandler{
		open:  func(*Conn) { opened.Add(1) },
		close: func(*Conn) { closed.Add(1) },
	})

	// Keep both CPUs busy while dialing: the poller thread that nbio's
	// registration wakes then tends to preempt the accept goroutine's thread
	// right inside the window, as it does on a loaded node.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	stopSpin := make(chan struct{})
	for range spinners {
		go func() {
			for {
				select {
				case <-stopSpin:
					return
				default:
				}
				for i := 0; i < 1e5; i++ {
				}
			}
		}()
	}

	// Dial in parallel so that connections queue in the accept backlog with
	// their requests already sent: the poller can then upgrade a socket as
	// soon as nbio registers it.
	var (
		wg       sync.WaitGroup
		clientMu sync.Mutex
		clients  []*websocket.Conn
		dialErrs atomic.Int32
		readErrs = make(chan error, sockets)
	)
	next := make(chan struct{}, sockets)
	for range sockets {
		next <- struct{}{}
	}
	close(next)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				ws, _, err := websocket.Dial(ctx, "ws://"+addr+"/v1/ws", nil)
				cancel()
				if err != nil {
					dialErrs.Add(1)
					continue
				}
				clientMu.Lock()
				clients = append(clients, ws)
				clientMu.Unlock()
				go func() { // reads until the end: answers pings
					_, _, err := ws.Read(context.Background())
					readErrs <- err
				}()
			}
		}()
	}
	wg.Wait()
	close(stopSpin)
	t.Cleanup(func() {
		for _, ws := range clients {
			_ = ws.CloseNow()
		}
	})
	if n := dialErrs.Load(); n > 0 {
		t.Fatalf("%d of %d dials failed", n, sockets)
	}
	waitFor(t, "every socket open", func() bool { return opened.Load() == sockets })

	// Idle for more than 3×RequestTimeout: a socket that nbio's request timer
	// still watches is closed by then.
	select {
	case err := <-readErrs:
		t.Fatalf("an idle upgraded socket was closed (%d of %d so far): %v", closed.Load(), sockets, err)
	case <-time.After(4 * requestTimeout):
	}
	if n := closed.Load(); n != 0 || s.Count() != sockets {
		t.Fatalf("%d of %d idle upgraded sockets were closed; Count = %d", n, sockets, s.Count())
	}
}
