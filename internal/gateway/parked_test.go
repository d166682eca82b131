package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// TestUnreadAnswerIsDroppedAfterRequestTimeout: an answer its client never
// reads waits in the node's write buffer, but not for ever: the connection's
// read deadline for its next request (RequestTimeout from the answer) closes
// it, and the unsent rest of the answer goes with it. The client, reading
// only afterwards, gets part of the answer and then the end of the
// connection, not the whole answer.
func TestUnreadAnswerIsDroppedAfterRequestTimeout(t *testing.T) {
	const size = 12 << 20 // well past what the kernel buffers hold (tcp_wmem's max is 4 MiB by default)
	_, addr := startServer(t, Config{MaxBody: size + 1024, RequestTimeout: 3 * time.Second}, &fakeHandler{})
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		_ = c.Control(func(fd uintptr) { // a small receive window, set before the handshake
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		})
		return err
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := fmt.Sprintf("POST /echo HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n", addr, size)
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(bytes.Repeat([]byte{'x'}, size)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(8 * time.Second) // the client reads nothing: well past RequestTimeout

	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the answer's head: %v", err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("read %d bytes, then the connection stayed open: the unread answer was kept", n)
	}
	if n >= size {
		t.Fatalf("the whole answer (%d bytes) was kept for a client that read nothing for 8 s", n)
	}
	t.Logf("got %d of %d bytes, then %v", n, size, err)
}
