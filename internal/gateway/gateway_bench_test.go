package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawClient is a minimal WebSocket client for benchmarks: after the
// handshake it only counts the bytes the server sends, so the numbers are
// the server's costs, not a client library's.
type rawClient struct {
	conn net.Conn
	got  atomic.Int64
}

func dialRaw(tb testing.TB, addr string) *rawClient {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	req := "GET /v1/ws HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		tb.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		tb.Fatalf("handshake: %v %v", res, err)
	}
	c := &rawClient{conn: conn}
	go func() {
		buf := make([]byte, 32<<10)
		if n := br.Buffered(); n > 0 { // frames that arrived with the 101
			b, _ := br.Peek(n)
			c.got.Add(int64(len(b)))
		}
		for {
			n, err := conn.Read(buf)
			c.got.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	return c
}

// BenchmarkWriteBroadcast writes one frame to each of 1000 local sockets per
// op and waits until every client has received everything.
func BenchmarkWriteBroadcast(b *testing.B) {
	const n = 1000
	for _, size := range []int{64, 1024} {
		b.Run(fmt.Sprintf("sockets=%d/frame=%dB", n, size), func(b *testing.B) {
			var mu sync.Mutex
			var conns []*Conn
			s, addr := startServer(b, Config{MaxQueued: 256 << 20}, &fakeHandler{
				open: func(c *Conn) {
					mu.Lock()
					conns = append(conns, c)
					mu.Unlock()
				},
			})
			clients := make([]*rawClient, n)
			for i := range clients {
				clients[i] = dialRaw(b, addr)
			}
			b.Cleanup(func() {
				for _, c := range clients {
					_ = c.conn.Close()
				}
			})
			waitFor(b, "all sockets open", func() bool { return s.Count() == n })

			frame := bytes.Repeat([]byte("x"), size)
			wire := int64(size + serverFrameOverhead(size))
			b.ReportAllocs()
			b.SetBytes(int64(n) * int64(size))
			b.ResetTimer()
			ops := 0
			for b.Loop() {
				for _, c := range conns {
					if err := c.Write(frame); err != nil {
						b.Fatal(err)
					}
				}
				ops++
			}
			want := int64(ops) * wire
			deadline := time.Now().Add(time.Minute)
			for _, c := range clients {
				for c.got.Load() < want {
					if time.Now().After(deadline) {
						b.Fatalf("client got %d of %d bytes", c.got.Load(), want)
					}
					time.Sleep(time.Millisecond)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(ops*n), "ns/write")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = s.Shutdown(ctx)
		})
	}
}
