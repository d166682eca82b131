package gateway

import (
	"net/http"
	"strconv"
)

// wrapHTTP works around two defects of nbhttp v1.6.8's ResponseWriter so the
// node's handlers can be written as for net/http:
//
//   - HEAD: nbio sends the body (and a chunked terminator) anyway, which
//     corrupts the next response on a keep-alive connection. headWriter drops
//     the body and sets Content-Length to what the handler wrote.
//   - Chunked bodies (no Content-Length): Response.writeChunk returns its
//     buffer to the pool and keeps using it when a write brings it past
//     64 KiB, so two connections end up sharing one buffer (we saw WebSocket
//     frames parsed from another response's bytes). chunkSafeWriter feeds
//     nbio at most 16 KiB per flush, which keeps writeChunk on its safe path.
//
// Both wrappers implement Unwrap, so Upgrade (and http.ResponseController)
// still reach nbio's writer.
func wrapHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			hw := &headWriter{ResponseWriter: w}
			next.ServeHTTP(hw, r)
			hw.finish()
			return
		}
		f, _ := w.(http.Flusher)
		next.ServeHTTP(&chunkSafeWriter{ResponseWriter: w, flusher: f}, r)
	})
}

// safeChunk is the most body bytes handed to nbio between two flushes of a
// chunked response; with the encoded head it stays well under nbio's 64 KiB.
const safeChunk = 16 << 10

type chunkSafeWriter struct {
	http.ResponseWriter
	flusher http.Flusher
	cached  int // body bytes nbio may hold since the last flush
}

func (w *chunkSafeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *chunkSafeWriter) Write(p []byte) (int, error) {
	if w.flusher == nil || w.Header().Get("Content-Length") != "" {
		return w.ResponseWriter.Write(p) // not chunked: nbio's path is sound
	}
	written := 0
	for len(p) > 0 {
		n := min(len(p), safeChunk)
		if w.cached+n > safeChunk {
			w.flusher.Flush()
			w.cached = 0
		}
		m, err := w.ResponseWriter.Write(p[:n])
		written += m
		w.cached += n
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

func (w *chunkSafeWriter) Flush() {
	if w.flusher != nil {
		w.flusher.Flush()
		w.cached = 0
	}
}

// headWriter answers HEAD like GET without a body.
type headWriter struct {
	http.ResponseWriter
	status int
	n      int
}

func (w *headWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *headWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *headWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}

func (w *headWriter) Flush() {}

func (w *headWriter) finish() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	h := w.Header()
	if h.Get("Content-Length") == "" && w.status != http.StatusNoContent && w.status != http.StatusNotModified {
		h.Set("Content-Length", strconv.Itoa(w.n))
	}
	h.Del("Transfer-Encoding")
	w.ResponseWriter.WriteHeader(w.status)
}
