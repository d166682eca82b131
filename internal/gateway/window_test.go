package gateway

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestUnmaskedFrameInTheUpgradeWindowClosesWith1002: a frame sent as soon
// as the 101 arrives can reach the node before Upgrade has handed the
// socket to its Conn (here the window is held open on purpose). An unmasked
// one there is refused like anywhere else: 1002, its message never handled,
// and the socket, opened and closed, is not left counted.
func TestUnmaskedFrameInTheUpgradeWindowClosesWith1002(t *testing.T) {
	var got, opened, closed atomic.Int32
	s, addr := startServer(t, Config{}, &fakeHandler{
		open:    func(*Conn) { opened.Add(1) },
		message: func(*Conn, []byte) { got.Add(1) },
		close:   func(*Conn) { closed.Add(1) },
	})
	inWindow := make(chan struct{})
	s.upgradeHook = func() {
		<-inWindow // the frame below was read while the socket was nbio's alone
		time.Sleep(50 * time.Millisecond)
	}
	r := dialRawSocket(t, addr)
	if _, err := r.conn.Write(clientFrame(opText, []byte("unmasked"), true)); err != nil {
		t.Fatal(err)
	}
	b := r.readAll(t)
	close(inWindow)
	if code := lastClose(b); code != CloseProtocolError {
		t.Fatalf("closed with %d, want 1002", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for (s.Count() != 0 || opened.Load() != closed.Load()) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := got.Load(); n != 0 {
		t.Fatalf("%d messages of the unmasked frame reached OnMessage", n)
	}
	if s.Count() != 0 || opened.Load() != closed.Load() {
		t.Fatalf("%d sockets still counted, %d opened and %d closed", s.Count(), opened.Load(), closed.Load())
	}
}
