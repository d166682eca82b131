package gateway

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/lesismal/nbio"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/switchboard-chat/switchboard/wire"
)

// strictScan checks every request head of a connection before nbio's parser
// sees it, for what nbhttp v1.6.8 lets through and RFC 9112 and RFC 9110
// refuse:
//
//   - conflicting Content-Length headers (nbio takes the first): the framing
//     is ambiguous, so a proxy and the node may split the stream into
//     different requests (request smuggling). RFC 9112 §6.3: 400 and close.
//     So is a request with both Content-Length and Transfer-Encoding (§6.1
//     allows refusing it), and a Content-Length that is not a number.
//   - a method that is not one of the standard upper-case tokens: methods
//     are case-sensitive (RFC 9110 §9.1) and nbio upper-cases them, so
//     "get" was served as GET; an unknown method made nbio drop the
//     connection without an answer.
//
// Each gets 400 bad_request and the connection is closed. The scan follows
// the request framing itself (heads, Content-Length bodies, chunks) so that
// it sees every head of a pipelined stream, and copies nothing but the few
// head lines it reads. After a request carrying Upgrade it stops: what
// follows is either WebSocket frames (mask.go checks those) or, if the
// upgrade was refused, requests that nbio's parser alone checks.
type strictScan struct {
	start  int // offset in the data being scanned where the current request began; 0 if before it
	state  int8
	skip   int64  // body or chunk bytes still to pass over
	line   []byte // the current head, chunk-size or trailer line: its first maxScanLine bytes
	long   bool   // the current line is longer than that
	first  bool   // the current head line is the request line
	method bool   // its method was checked
	cr     bool   // the last line ended with CR: a LF right after it belongs to it
	length int64  // the request's Content-Length, -1 for none
	te     bool   // the request has Transfer-Encoding
	chunk  bool   // ... and it is chunked
	up     bool   // the request has an Upgrade header
	drop   bool   // the connection was refused (400 or 413): what it sends is dropped unparsed
}

const (
	scanHead     int8 = iota // in a request head
	scanBody                 // skipping a Content-Length body
	scanChunk                // reading a chunk-size line
	scanChunkEnd             // skipping a chunk's data and its CRLF
	scanTrailer              // reading trailer lines after the last chunk
	scanOff                  // after an upgrade request: nbio alone parses

	// maxScanLine bounds what is kept of one line. Of a longer line (a big
	// cookie, a long URL) only the start is looked at; nbio's own limits
	// apply to the rest.
	maxScanLine = 1024
)

// validMethods are the methods the node may see, as RFC 9110 spells them.
var validMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
	http.MethodConnect: true, http.MethodTrace: true,
}

// scan reports "" when data holds nothing to refuse, else why; clean is
// how many bytes of data come before the refused request (0 if it began in
// an earlier read): those may be parsed.
func (s *strictScan) scan(data []byte) (why string, clean int) {
	s.start = 0
	n := len(data)
	for len(data) > 0 {
		if s.cr {
			s.cr = false
			if data[0] == '\n' {
				if s.start == n-len(data) {
					s.start++ // the LF ends the request before
				}
				data = data[1:]
				continue
			}
		}
		switch s.state {
		case scanOff:
			return "", n
		case scanBody, scanChunkEnd:
			k := min(s.skip, int64(len(data)))
			s.skip -= k
			data = data[k:]
			if s.skip == 0 {
				if s.state == scanBody {
					s.reset(n - len(data))
				} else {
					s.state = scanChunk
				}
			}
			continue
		}
		// A line is judged at its CR (or a bare LF): nbio acts on a header
		// there, before the LF arrives.
		i := bytes.IndexAny(data, "\r\n")
		part := data
		if i >= 0 {
			part = data[:i]
		}
		if room := maxScanLine - len(s.line); len(part) > room {
			part, s.long = part[:room], true
		}
		s.line = append(s.line, part...)
		if s.state == scanHead && s.first && !s.method {
			// nbio judges the method byte by byte.
			if why := s.checkMethod(i >= 0); why != "" {
				return why, s.start
			}
		}
		if i < 0 {
			return "", n
		}
		s.cr = data[i] == '\r'
		data = data[i+1:]
		line, long := s.line, s.long
		s.line, s.long = s.line[:0], false
		if why := s.endLine(line, long, n-len(data)); why != "" {
			return why, s.start
		}
	}
	return "", n
}

// endLine takes one whole line without its CRLF, or the start of a long
// one; next is the offset of the byte after it in the data being scanned.
func (s *strictScan) endLine(line []byte, long bool, next int) string {
	switch s.state {
	case scanChunk:
		size := line
		if j := bytes.IndexByte(size, ';'); j >= 0 {
			size = size[:j]
		}
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 || long {
			return "malformed chunk size"
		}
		if n == 0 {
			s.state = scanTrailer
			return ""
		}
		s.state, s.skip = scanChunkEnd, n+2 // the data and its CRLF
		return ""
	case scanTrailer:
		if len(line) == 0 {
			s.reset(next)
		}
		return ""
	}
	// scanHead
	if s.first {
		s.first = false // checkMethod checked it
		return ""
	}
	if len(line) == 0 {
		return s.endHead(next)
	}
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok {
		return "" // nbio refuses it
	}
	value = bytes.TrimSpace(value)
	switch {
	case long && (bytes.EqualFold(name, []byte("Content-Length")) || bytes.EqualFold(name, []byte("Transfer-Encoding"))):
		return "malformed Content-Length or Transfer-Encoding"
	case bytes.EqualFold(name, []byte("Content-Length")):
		for v := range bytes.SplitSeq(value, []byte(",")) {
			n, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
			if err != nil || n < 0 {
				return "malformed Content-Length"
			}
			if s.length >= 0 && n != s.length {
				return "conflicting Content-Length headers"
			}
			s.length = n
		}
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		s.te = true
		s.chunk = bytes.EqualFold(value, []byte("chunked"))
	case bytes.EqualFold(name, []byte("Upgrade")):
		s.up = true
	}
	return ""
}

// checkMethod checks the method at the start of the request line, as far
// as it has arrived (all of the line if ended): one of validMethods, then a
// space. It refuses at the first byte with which no valid method goes on,
// since nbio's parser judges every byte as it comes: one that is in no
// method at all, like the F of FETCH, makes it drop the connection without
// an answer. An empty line before a request, which RFC 9112 §2.2 lets a
// server ignore, nbio refuses; so is it here.
func (s *strictScan) checkMethod(ended bool) string {
	const why = "unknown method (methods are case-sensitive upper-case tokens)"
	name, _, spaced := bytes.Cut(s.line, []byte(" "))
	switch {
	case spaced && validMethods[string(name)]:
		s.method = true
		return ""
	case spaced || ended || !beginsAMethod(name):
		return why
	}
	return ""
}

// beginsAMethod reports whether one of validMethods begins with prefix.
func beginsAMethod(prefix []byte) bool {
	for m := range validMethods {
		if len(prefix) <= len(m) && m[:len(prefix)] == string(prefix) {
			return true
		}
	}
	return false
}

// endHead decides how the request's body is framed; next is the offset
// after the head.
func (s *strictScan) endHead(next int) string {
	switch {
	case s.te && s.length >= 0:
		return "both Content-Length and Transfer-Encoding"
	case s.up:
		s.state, s.line = scanOff, nil // an upgraded socket keeps no head buffer
	case s.te && s.chunk:
		s.state = scanChunk
	case s.te:
		s.state, s.line = scanOff, nil // nbio refuses any other transfer coding
	case s.length > 0:
		s.state, s.skip = scanBody, s.length
	default:
		s.reset(next)
	}
	return ""
}

// reset readies the scan for the next request's head, which begins at
// offset start of the data being scanned.
func (s *strictScan) reset(start int) {
	*s = strictScan{start: start, line: s.line[:0], first: true, length: -1, cr: s.cr, drop: s.drop}
}

// badRequest is the answer to a request strictScan refuses.
func badRequest(why string) []byte {
	body, _ := json.Marshal(wire.Problem{Type: "about:blank", Title: http.StatusText(http.StatusBadRequest),
		Status: http.StatusBadRequest, Code: wire.CodeBadRequest, Detail: "malformed request: " + why})
	head := "HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+json\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\nConnection: close\r\n\r\n"
	return append([]byte(head), body...)
}

// strictProcessor is nbio's request processor with the connection's scan
// state beside it: the parser is the one per-connection value onData gets.
type strictProcessor struct {
	nbhttp.Processor
	scan strictScan
}

// strictOf returns p's scan, wrapping p's processor on the connection's
// first read (before any request of it reaches a handler).
func strictOf(p *nbhttp.Parser) *strictScan {
	sp, ok := p.Processor.(*strictProcessor)
	if !ok {
		sp = &strictProcessor{Processor: p.Processor}
		sp.scan.reset(0)
		p.Processor = sp
	}
	return &sp.scan
}

// refuseBadRequest answers 400 with why; nothing more of c is parsed. The
// answer goes out on the connection's job list, after the answers to the
// requests before the refused one (responses keep the requests' order).
// Like the 413 answer, the connection is then only drained until the client
// closes it or closeTimeout passes, so that the client reads the answer
// instead of a reset. The drain deadline goes through the handoff tracker:
// refused on its first read, c may not yet have the request deadline that
// nbio's accept goroutine arms, which would replace it (handoff.go).
func (s *Server) refuseBadRequest(c *nbio.Conn, p *nbhttp.Parser, why string) {
	strictOf(p).drop = true // the rest is dropped unparsed
	s.handoff.setReadDeadline(c, time.Now().Add(s.closeTimeout))
	answer := func() {
		// Again: answering the requests before it re-armed nbio's deadline.
		s.handoff.setReadDeadline(c, time.Now().Add(s.closeTimeout))
		if _, err := c.Write(badRequest(why)); err != nil {
			_ = c.Close()
		}
	}
	if p.Execute == nil || !p.Execute(answer) {
		answer()
	}
}
