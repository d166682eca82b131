package gateway

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// exchange writes raw to a new connection, in pieces of at most piece bytes
// (0: at once), and reads every response until the server ends the
// connection or 5 s pass; it returns the statuses in order and whether the
// connection ended.
func exchange(t *testing.T, addr, raw string, piece int) (statuses []int, ended bool) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	go func() {
		for b := raw; len(b) > 0; {
			k := len(b)
			if piece > 0 {
				k = min(piece, len(b))
			}
			if _, err := io.WriteString(conn, b[:k]); err != nil {
				return
			}
			b = b[k:]
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(conn)
	for {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return statuses, err == io.EOF || err == io.ErrUnexpectedEOF || strings.Contains(err.Error(), "reset")
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		statuses = append(statuses, res.StatusCode)
		if res.Close {
			_, err := br.ReadByte()
			return statuses, err != nil && !isTimeout(err)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestHTTPFramingAmbiguitiesAreRefused: requests whose framing or method
// nbio's parser took leniently get 400 and the connection is closed, after
// the answers to the requests before them. nbio served "get" as GET, took
// the first of two different Content-Lengths (a request-smuggling vector
// behind a proxy that takes the last), and dropped an unknown method's
// connection without an answer.
func TestHTTPFramingAmbiguitiesAreRefused(t *testing.T) {
	s, addr := startServer(t, Config{TooLarge: []byte(`{}`)}, &fakeHandler{})
	s.closeTimeout = 100 * time.Millisecond // how long a refused connection is drained before it is closed
	const get = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
	for _, tc := range []struct {
		name string
		raw  string
		want []int
	}{
		{"a lower-case method", "get /hello HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}},
		{"an unknown method", "FETCH /hello HTTP/1.1\r\nHost: x\r\n\r\n", []int{400}},
		{"two different Content-Lengths", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", []int{400}},
		{"a Content-Length list with different values", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 5\r\n\r\nabcde", []int{400}},
		{"both Content-Length and Transfer-Encoding", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", []int{400}},
		{"a lower-case method pipelined after a good request", get + "get /hello HTTP/1.1\r\nHost: x\r\n\r\n", []int{200, 400}},
		{"a smuggled request inside a Content-Length body is not a request", "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 32\r\n\r\nget /hello HTTP/1.1\r\nHost: x\r\n\r\n" + "FETCH / HTTP/1.1\r\n\r\n", []int{200, 400}},
		{"a bad request after a chunked body", "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nget /\r\n0\r\n\r\n" + "get /hello HTTP/1.1\r\n\r\n", []int{200, 400}},
	} {
		for _, piece := range []int{0, 1, 7} {
			t.Run(tc.name+" gets "+fmtInts(tc.want)+" (written in pieces of "+fmtPiece(piece)+")", func(t *testing.T) {
				got, ended := exchange(t, addr, tc.raw, piece)
				if fmtInts(got) != fmtInts(tc.want) || !ended {
					t.Fatalf("statuses %v, connection ended %v; want %v and the connection closed", got, ended, tc.want)
				}
			})
		}
	}
}

// TestWellFramedRequestsPassTheStrictScan: the scan follows pipelined
// requests with Content-Length and chunked bodies, a long header and an
// identical repeated Content-Length, however the stream is cut.
func TestWellFramedRequestsPassTheStrictScan(t *testing.T) {
	_, addr := startServer(t, Config{}, &fakeHandler{})
	raw := "GET /hello HTTP/1.1\r\nHost: x\r\nCookie: " + strings.Repeat("c", 5000) + "\r\n\r\n" +
		"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello" +
		"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n10\r\n" + strings.Repeat("d", 16) + "\r\n0\r\n\r\n" +
		"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
	for _, piece := range []int{0, 1, 3, 100} {
		if got, _ := exchange(t, addr, raw, piece); fmtInts(got) != fmtInts([]int{200, 200, 200, 200}) {
			t.Fatalf("pieces of %d bytes: statuses %v, want four 200s", piece, got)
		}
	}
}

func fmtInts(v []int) string {
	var b strings.Builder
	for i, n := range v {
		if i > 0 {
			b.WriteString(" then ")
		}
		b.WriteString(strconv.Itoa(n))
	}
	return b.String()
}

func fmtPiece(n int) string {
	if n == 0 {
		return "any size"
	}
	return strconv.Itoa(n) + " bytes"
}

// TestConnectionsRefusedOnTheirFirstReadAreClosed: a connection refused on
// its first read is closed closeTimeout after the answer, not RequestTimeout
// later. nbio's accept goroutine arms a new connection's read deadline
// (RequestTimeout) after handing it to the poller, which may already have
// read the bad request, answered 400 and armed the drain's deadline: the
// accept goroutine's deadline used to replace it, and the refused
// connection stayed open for RequestTimeout (handoff.go).
func TestConnectionsRefusedOnTheirFirstReadAreClosed(t *testing.T) {
	const (
		conns    = 300
		spinners = 4
		// The bound for "closed": well above closeTimeout on a loaded box,
		// well below RequestTimeout.
		bound = 10 * time.Second
	)
	s, addr := startServer(t, Config{TooLarge: []byte(`{}`), RequestTimeout: time.Minute}, &fakeHandler{})
	s.closeTimeout = 100 * time.Millisecond

	// As in TestUpgradedSocketsOutliveRequestTimeout: busy CPUs and requests
	// already sent when a connection is accepted, so that the poller tends
	// to read and refuse the request inside the accept goroutine's window.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	stopSpin := make(chan struct{})
	defer close(stopSpin)
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

	next := make(chan struct{}, conns)
	for range conns {
		next <- struct{}{}
	}
	close(next)
	var (
		wg             sync.WaitGroup
		open, answered atomic.Int32
		errs           = make(chan error, conns)
	)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				status, ended, err := refusedAtOnce(addr, bound)
				switch {
				case err != nil:
					errs <- err
				case status != http.StatusBadRequest:
					errs <- fmt.Errorf("status %d, want 400", status)
				case !ended:
					open.Add(1)
				default:
					answered.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := open.Load(); n > 0 {
		t.Fatalf("%d of %d connections answered 400 were still open %v later (closed: %d)", n, conns, bound, answered.Load())
	}
}

// refusedAtOnce dials addr, sends a lower-case method in the first write and
// reads the answer; ended reports whether the server then ended the
// connection within bound.
func refusedAtOnce(addr string, bound time.Duration) (status int, ended bool, err error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, false, err
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "get /hello HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return 0, false, err
	}
	_ = conn.SetReadDeadline(time.Now().Add(bound))
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, false, fmt.Errorf("reading the answer: %w", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	_, err = br.ReadByte()
	return res.StatusCode, err != nil && !isTimeout(err), nil
}

// TestTheScanRefusesAMethodAtItsFirstWrongByte: however the request line is
// cut, the scan refuses a method as soon as no valid method begins like it,
// before nbio's parser sees that byte. nbio refuses a first byte that is in
// no method by dropping the connection without an answer, so "FETCH" written
// a byte at a time used to get no 400: the scan waited for the space.
func TestTheScanRefusesAMethodAtItsFirstWrongByte(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string
		at   int // how many bytes have been read when it is refused; 0: never
	}{
		{"a method that no valid one begins with is refused at its first byte", "FETCH / HTTP/1.1\r\n", 1},
		{"a lower-case method is refused at its first byte", "get / HTTP/1.1\r\n", 1},
		{"a valid method's beginning gone wrong is refused at the wrong byte", "GEX / HTTP/1.1\r\n", 3},
		{"HTTP/2's PRI, which nbio takes, is refused at its second byte", "PRI * HTTP/2.0\r\n", 2},
		{"a valid method run on is refused at the byte after it", "OPTIONSX * HTTP/1.1\r\n", 8},
		{"a request line without a space is refused at its end", "GET\r\n", 4},
		{"a valid method is not refused", "OPTIONS * HTTP/1.1\r\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s strictScan
			s.reset(0)
			for i := range len(tc.raw) {
				if why, _ := s.scan([]byte(tc.raw[i : i+1])); why != "" {
					if i+1 != tc.at {
						t.Fatalf("refused after %d bytes (%s), want %d", i+1, why, tc.at)
					}
					return
				}
			}
			if tc.at != 0 {
				t.Fatalf("not refused, want refused after %d bytes", tc.at)
			}
		})
	}
}
