package wire

import "encoding/json"

// TypeCall is the call signalling frame, sent by both sides: Call.
const TypeCall = "call"

// Call actions a client sends.
const (
	CallInvite  = "invite"  // ring every device of the other member of a direct conversation
	CallAccept  = "accept"  // a ringing device answers; the first accept wins
	CallDecline = "decline" // a ringing device refuses
	CallSignal  = "signal"  // SDP offer/answer or ICE candidate, to ToDevice, the other party's device
	CallEnd     = "end"     // either party hangs up (the caller may before an answer: the ringing stops)
)

// Call actions only the server sends.
const (
	CallAnsweredElsewhere = "answered_elsewhere" // to the callee's other ringing devices once one accepted
	CallDeclined          = "declined"           // to the caller: every ringing device declined
	CallMissed            = "missed"             // to the caller and the ringing devices: nobody answered in time
)

// CallClientActions and CallServerActions list the actions of each side; a
// server also relays the client actions.
var (
	CallClientActions = []string{CallInvite, CallAccept, CallDecline, CallSignal, CallEnd}
	CallServerActions = []string{CallInvite, CallAccept, CallDecline, CallSignal, CallEnd,
		CallAnsweredElsewhere, CallDeclined, CallMissed}
)

// Call is the call frame. A client sets CallID (its own choice, unique in
// the conversation), Conversation, Action, ToDevice (signal only) and
// Payload; the server adds From and leaves ToDevice out. Payload is opaque
// to the server (clients may seal it): a JSON object or absent. Call
// frames are rare, so the node decodes them with encoding/json rather
// than with DecodeClientFrame.
type Call struct {
	Type         string          `json:"type"`
	CallID       string          `json:"call_id"`
	Conversation string          `json:"conversation"`
	Action       string          `json:"action"`
	ToDevice     string          `json:"to_device,omitempty"`
	From         *Sender         `json:"from,omitempty"`
	Payload      json.RawMessage `json:"payload,omitempty"`
}

// MaxCallID is the longest call_id a node takes, in bytes.
const MaxCallID = 64
