package gateway

import "github.com/switchboard-chat/switchboard/wire"

// The close codes the gateway sends. wire/close.go allocates every close
// code switchboard sends and documents each (docs/protocol.md repeats the
// table for client authors); these names only keep the gateway's calls short.
// A writer of many frames avoids 4008 (CloseSlowConsumer) by waiting for
// room (Conn.WaitQueued).
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
	CloseNormal          = wire.CloseNormal
	CloseGoingAway       = wire.CloseGoingAway
	CloseProtocolError   = wire.CloseProtocolError
	CloseUnsupportedData = wire.CloseUnsupportedData
	ClosePolicy          = wire.ClosePolicy
	CloseTooBig          = wire.CloseTooBig
	CloseSlowConsumer    = wire.CloseSlowConsumer
	ClosePingTimeout     = wire.ClosePingTimeout
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
