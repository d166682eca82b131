package gateway

import "github.com/switchboard-chat/switchboard/wire"

// The close codes the gateway sends. wire/close.go allocates every close
// code switchboard sends and documents each (docs/protocol.md repeats the
// table for client authors); these names only keep the gateway's calls short.
const (
	CloseNormal          = wire.CloseNormal
	CloseGoingAway       = wire.CloseGoingAway
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
