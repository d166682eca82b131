package wire

// WebSocket close codes sent by switchboard. This table is the one place that
// allocates them; docs/protocol.md repeats it for client authors
// (TestProtocolDocCodes keeps the two equal).
//
//	code  name                  sent by      meaning / what a client should do
//	----  --------------------  -----------  ---------------------------------------------
//	1000  CloseNormal           either       normal closure.
//	1001  CloseGoingAway        gateway/node the node is shutting down (or a sync failed):
//	                                         reconnect (after a short random backoff) and
//	                                         sync.
//	1002  CloseProtocolError    gateway/nbio a client frame without a mask (the gateway),
//	                                         a malformed frame, invalid UTF-8 in a text
//	                                         frame or in a close reason (nbio): fix the
//	                                         client.
//	1003  CloseUnsupportedData  gateway      a binary message; the protocol is JSON text.
//	1008  ClosePolicy           gateway/node policy violation; the gateway uses it when a
//	                                         client sends faster than its messages are
//	                                         handled (inbound backlog over its bound), the
//	                                         node when a client ignores rate_limited.
//	1009  CloseTooBig           gateway      a message larger than the frame limit; the
//	                                         reason says so. Do not resend it unchanged.
//	4000–4099                   reserved     the gateway and the wire protocol. Allocate
//	                                         new codes in this range only in this file.
//	4001  CloseDeviceRevoked    node         the device was revoked: do not reconnect
//	                                         with this token.
//	4002  CloseReplaced         node         a newer connection of the same device took
//	                                         over: do not reconnect automatically.
//	4003  CloseSessionExpired   node         the token expired while the socket was open:
//	                                         log in again.
//	4008  CloseSlowConsumer     gateway      the socket's outbound queue exceeded its
//	                                         bound (reason "slow consumer"): reconnect and
//	                                         sync from the cursors.
//	4009  ClosePingTimeout      gateway      no frame and no pong for 2×PingInterval:
//	                                         reconnect.
//	4100–4999                   node         free for a node's own application codes.
//
// Codes 1004–1006 and 1015 are never sent on the wire; a client sees 1006 when
// the TCP connection drops without a close frame (for example after a close
// handshake timeout).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001
	CloseProtocolError   = 1002
	CloseUnsupportedData = 1003
	ClosePolicy          = 1008
	CloseTooBig          = 1009

	// CloseReservedMin and CloseReservedMax bound the range reserved for the
	// gateway and the wire protocol.
	CloseReservedMin = 4000
	CloseReservedMax = 4099

	CloseDeviceRevoked  = 4001
	CloseReplaced       = 4002
	CloseSessionExpired = 4003
	CloseSlowConsumer   = 4008
	ClosePingTimeout    = 4009
)

// CloseCodes lists every close code switchboard sends, in the order above.
var CloseCodes = []int{
	CloseNormal, CloseGoingAway, CloseProtocolError, CloseUnsupportedData, ClosePolicy, CloseTooBig,
	CloseDeviceRevoked, CloseReplaced, CloseSessionExpired, CloseSlowConsumer, ClosePingTimeout,
}
