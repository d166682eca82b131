// Package gateway is switchboard's socket layer: one event-driven engine that
// serves the HTTP API and upgrades authenticated requests to WebSockets on the
// same port, with bounded per-socket queues and documented close codes.
//
// # Why nbio and not gorilla/websocket or coder/websocket
//
// A node must hold about 19,500 idle authenticated sockets per process at no
// more than 2 KB of resident memory each. The classic Go servers (net/http
// with gorilla/websocket or coder/websocket) park at least one goroutine per
// socket in Read, plus a bufio reader and often a writer goroutine: 2–8 KB of
// stack each and 4 KB buffers, 6–17 KB per idle socket before the
// application stores anything.
//
// github.com/lesismal/nbio (nbhttp + nbhttp/websocket) instead registers the
// file descriptors with epoll and parses whatever bytes arrive on a few poller
// goroutines shared by all sockets. Read buffers belong to the pollers and
// message buffers come from a pool only while a frame is in flight
// (ReleaseWebsocketPayload), so an idle socket costs its *nbio.Conn, its
// *websocket.Conn and this package's *Conn: a few hundred bytes.
//
// # What this package adds on top of nbio
//
//   - No per-socket goroutine or timer for liveness: one ticker per Server
//     sweeps all sockets, pings the ones silent for PingInterval and closes
//     the ones silent for 2×PingInterval. Activity is an int64 stored by the
//     poller on every read.
//   - Handler.OnMessage runs on nbio's bounded executor pool, serialised per
//     socket by nbio's per-connection job list, so a handler may block (a
//     database commit) without stalling any socket's I/O.
//   - Outbound bytes that the kernel has not accepted yet are counted per
//     socket (nbio's OnWrittenSize hook); past Config.MaxQueued the socket is
//     closed as a slow consumer (4008) instead of growing memory. A writer of
//     many frames (a backlog replay) waits for room with Conn.WaitQueued,
//     woken by the same hook, and so goes at the peer's reading pace.
//     Pongs and pings count like any frame (writeControl), so a peer that
//     pings and never reads is closed there too; a Handler that is a
//     PingAdmitter sees every ping first (the node counts pings against the
//     socket's frame rate).
//   - Inbound bytes parsed but not yet handled are bounded too (1008).
//   - What nbio v1.6.8 accepts and the RFCs refuse is refused before nbio's
//     parsers see it: an unmasked client frame closes the socket with 1002
//     (mask.go), from the first byte after the 101 (window.go); a request with conflicting Content-Length headers, both
//     Content-Length and Transfer-Encoding, or a lower-case or unknown
//     method gets 400 and its connection is closed (strict.go).
//   - Outbound frames are encoded by the gateway into pooled buffers and
//     handed to nbio in one Write each: no allocation per frame (nbio's
//     WriteMessage allocates twice), and frames never interleave. One writer
//     per socket at a time (Conn.omu, from taking the pending frames to
//     nbio's Write), so batches and control frames go out in the order they
//     were taken, and nothing after the close frame.
//   - Every read has a deadline. Before an upgrade, nbio's read deadline
//     (Config.RequestTimeout, default 30s) bounds the wait for a whole
//     request, head and body, from the accept or the previous response, and
//     so also the idle time of a kept-alive connection; a request over
//     Config.MaxBody is answered 413 (Config.TooLarge) before it is
//     buffered, its rest read and dropped, and the connection closed. A
//     handler's request context ends when its connection closes or
//     RequestTimeout after it started (nbhttp's never ends: reqctx.go). After the
//     upgrade the deadline is cleared and the sweeper takes over: a socket
//     silent for PingInterval is pinged, one silent for 2×PingInterval is
//     closed with 4009; a socket that was sent a close frame is dropped when
//     its peer answers, or has taken no byte for 5s, or 30s later at most
//     (close.go).
//   - The Origin of an upgrade is checked by Config.CheckOrigin, which the
//     node sets to its allow-list. nbio's default (used only when it is nil)
//     would allow any request whose Origin host equals its Host header.
//   - Workarounds for nbio v1.6.8 defects, each next to its code: an accept
//     loop that backs off on EMFILE instead of spinning (listener.go); HEAD
//     responses without a body and chunked responses that do not corrupt
//     nbio's buffer pool (http.go); no engine stop right after start, which
//     can hang (server.go); a socket upgraded before nbio's accept goroutine
//     arms its request deadline gets that deadline cleared once the handoff
//     is over, instead of being closed RequestTimeout later, and one refused
//     in that window keeps its closeTimeout drain deadline (handoff.go); a
//     race-build-only edge for nbio's accept→poller handoff, which the race
//     detector cannot see (race.go).
//
// Close codes are allocated and documented in wire/close.go.
package gateway
