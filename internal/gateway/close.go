package gateway

// WebSocket close codes sent by switchboard. This table is the one place that
// allocates them; docs/protocol.md repeats it for client authors.
//
//	code  name                  sent by      meaning / what a client should do
//	----  --------------------  -----------  ---------------------------------------------
//	1000  CloseNormal           either       normal closure.
//	1001  CloseGoingAway        gateway      the node is shutting down: reconnect (after
//	                                         a short random backoff) and sync.
//	1002  (protocol error)      nbio         malformed frame, invalid UTF-8 in a text
//	                                         frame or in a close reason: fix the client.
//	1003  CloseUnsupportedData  gateway      a binary message; the protocol is JSON text.
//	1008  ClosePolicy           gateway/node policy violation; the gateway uses it when a
//	                                         client sends faster than its messages are
//	                                         handled (inbound backlog over its bound).
//	1009  CloseTooBig           gateway      a message larger than Config.MaxFrame; the
//	                                         reason says so. Do not resend it unchanged.
//	4000–4099                   reserved     the gateway and the wire protocol. Allocate
//	                                         new codes in this range only in this file.
//	4008  CloseSlowConsumer     gateway      the socket's outbound queue exceeded
//	                                         Config.MaxQueued (reason "slow consumer"):
//	                                         reconnect and sync from the cursors. A
//	                                         writer of many frames avoids it by
//	                                         waiting for room (Conn.WaitQueued).
//	4009  ClosePingTimeout      gateway      no frame and no pong for 2×PingInterval.
//	4100–4999                   node         free for the node's own application codes.
//
// Codes 1004–1006 and 1015 are never sent on the wire; a client sees 1006 when
// the TCP connection drops without a close frame (for example after a close
// handshake timeout).
//
// How a close the gateway starts (Conn.Close) ends. The close frame goes out
// after every frame queued before it, and nothing after it: those frames are
// whole and the peer may act on them (ack them; its frames are handled until
// the handshake ends), and a close frame cannot overtake bytes nbio already
// holds anyway. For 4008 that means behind up to MaxQueued bytes, which the
// peer must read first. So the TCP connection is not dropped at a fixed time
// after Close, which used to cut a slow but reading peer off before its close
// frame and leave it a bare EOF: it is dropped when the peer answers, when
// the peer has taken no queued byte for closeTimeout (5 s; once the close
// frame is in the kernel, nothing more is queued, so this is also the wait
// for the answer), or closeDrainMax (30 s) after Close, for a peer that
// trickles. A peer that stopped reading cannot get the close frame at all
// and sees the connection end (1006), possibly in the middle of a frame;
// it reconnects and syncs as it would after the close code. abort, for a
// peer that is not expected to answer (1008 for an inbound flood, 4009),
// drops the connection at once.
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseUnsupportedData = 1003
	ClosePolicy          = 1008
	CloseTooBig          = 1009

	// CloseReservedMin and CloseReservedMax bound the range reserved for the
	// gateway and the wire protocol.
	CloseReservedMin = 4000
	CloseReservedMax = 4099

	CloseSlowConsumer = 4008
	ClosePingTimeout  = 4009
)

// maxCloseReason is the longest close reason that fits in a control frame
// (125 bytes of payload minus the 2-byte code).
const maxCloseReason = 123

// closeReason trims reason to fit a close frame without splitting a UTF-8
// sequence.
func closeReason(reason string) string {
	if len(reason) <= maxCloseReason {
		return reason
	}
	n := maxCloseReason
	for n > 0 && reason[n]&0xC0 == 0x80 { // continuation byte: back up to a rune start
		n--
	}
	return reason[:n]
}
