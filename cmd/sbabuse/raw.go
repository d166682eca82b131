package main

import (
	"bufio"
	"cmp"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// The replays of items 3 and 6 need clients that misbehave on purpose (send
// and never read), which no well-behaved library does: these speak HTTP and
// WebSocket over a bare TCP connection.

// rawConn is a TCP connection to the node that the caller writes to and
// reads from only when it chooses.
type rawConn struct {
	net.Conn
	br *bufio.Reader
}

// dialRaw connects to target's host; rcvbuf > 0 sets the socket's receive
// buffer before the connect, so that the window the node sees is small.
func dialRaw(target string, rcvbuf int) (*rawConn, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return cmp.Or(err, serr)
		}
	}
	c, err := d.Dial("tcp", u.Host)
	if err != nil {
		return nil, err
	}
	return &rawConn{Conn: c, br: bufio.NewReader(c)}, nil
}

// upgrade opens a WebSocket for d: the handshake is read, nothing after it.
func upgrade(target string, d *device) (*rawConn, error) {
	c, err := dialRaw(target, 0)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 16)
	rand.Read(key)
	u, _ := url.Parse(target)
	fmt.Fprintf(c, "GET /v1/ws?device=%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
		url.QueryEscape(d.id), u.Host, base64.StdEncoding.EncodeToString(key), d.token)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("upgrade: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		c.Close()
		return nil, fmt.Errorf("upgrade: %s %s", resp.Status, strings.TrimSpace(string(body)))
	}
	c.SetReadDeadline(time.Time{})
	return c, nil
}

// frame is one masked client frame (FIN set) of the given opcode.
func frame(op byte, payload []byte) []byte {
	f := []byte{0x80 | op}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n < 1<<16:
		f = append(f, 0x80|126, byte(n>>8), byte(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	mask := make([]byte, 4)
	rand.Read(mask)
	f = append(f, mask...)
	for i, c := range payload {
		f = append(f, c^mask[i%4])
	}
	return f
}

const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// readFrames reads what the node sent (until EOF, an error or the
// deadline) and counts frames by kind; the close code, if a close frame came.
func readFrames(c *rawConn, deadline time.Time) (counts map[string]int, closeCode int, err error) {
	counts = map[string]int{}
	c.SetReadDeadline(deadline)
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.br, h[:]); err != nil {
			return counts, closeCode, err
		}
		n := uint64(h[1] & 0x7f)
		switch n {
		case 126:
			var l [2]byte
			if _, err := io.ReadFull(c.br, l[:]); err != nil {
				return counts, closeCode, err
			}
			n = uint64(binary.BigEndian.Uint16(l[:]))
		case 127:
			var l [8]byte
			if _, err := io.ReadFull(c.br, l[:]); err != nil {
				return counts, closeCode, err
			}
			n = binary.BigEndian.Uint64(l[:])
		}
		if n > 1<<20 {
			return counts, closeCode, errors.New("frame over 1 MiB")
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(c.br, payload); err != nil {
			return counts, closeCode, err
		}
		switch op := h[0] & 0x0f; op {
		case opClose:
			counts["close"]++
			if len(payload) >= 2 {
				closeCode = int(binary.BigEndian.Uint16(payload))
			}
			return counts, closeCode, nil
		case opPong:
			counts["pong"]++
		case opPing:
			counts["ping"]++
		case opText:
			kind := "text"
			if i := strings.Index(string(payload), `"type":"`); i >= 0 {
				rest := string(payload[i+8:])
				if j := strings.IndexByte(rest, '"'); j >= 0 {
					kind = rest[:j]
					if kind == "error" {
						if k := strings.Index(rest, `"code":"`); k >= 0 {
							code := rest[k+8:]
							if l := strings.IndexByte(code, '"'); l >= 0 {
								kind += " " + code[:l]
							}
						}
					}
				}
			}
			counts[kind]++
		default:
			counts[fmt.Sprintf("opcode %d", op)]++
		}
	}
}

// stall sends a GET with d's token and reads nothing: the node writes its
// answer into a connection nobody drains.
func stall(target, path string, d *device) (*rawConn, error) {
	// A small receive buffer, so that the node's writes stall early instead
	// of filling the kernel's buffers.
	c, err := dialRaw(target, 4<<10)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(target)
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", path, u.Host, d.token); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// status reads the status line of a stalled request's answer (at the end,
// once the stall is over): "200", or how the connection ended.
func (c *rawConn) status() string {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := c.br.ReadString('\n')
	if err != nil {
		return answer{err: err}.key()
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return "bad status line"
	}
	return f[1]
}
