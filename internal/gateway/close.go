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
//	                                         reconnect and sync from the cursors.
//	4009  ClosePingTimeout      gateway      no frame and no pong for 2×PingInterval.
//	4100–4999                   node         free for the node's own application codes.
//
// Codes 1004–1006 and 1015 are never sent on the wire; a client sees 1006 when
// the TCP connection drops without a close frame (for example after a close
// handshake timeout).
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
