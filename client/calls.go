package client

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"

	"github.com/coder/websocket"
	"github.com/switchboard-chat/switchboard/wire"
)

// Calls: 1:1 call signalling in direct conversations (docs/protocol.md,
// "Calls"). The server relays; the media flows between the devices
// (WebRTC), negotiated through Signal. Payloads are opaque to the server:
// seal them if they must stay private.

// Call names a call: the conversation it is in and its id (the caller's
// choice, unique in the conversation).
type Call struct {
	Conversation string
	ID           string
}

// Call actions, as found in [CallEvent].Action.
const (
	CallInvite            = wire.CallInvite            // a device of the other member rings this one
	CallAccept            = wire.CallAccept            // the callee accepted (to the caller)
	CallDecline           = wire.CallDecline           // relayed declines are not sent: see CallDeclined
	CallSignal            = wire.CallSignal            // an SDP offer or answer or an ICE candidate from the other party
	CallEnd               = wire.CallEnd               // the other party hung up, or its device stayed away past the grace
	CallAnsweredElsewhere = wire.CallAnsweredElsewhere // another device of this user accepted: stop ringing
	CallDeclined          = wire.CallDeclined          // every ringing device declined (to the caller)
	CallMissed            = wire.CallMissed            // nobody answered in time (to the caller and the ringing devices)
	CallError             = wire.TypeError             // a call frame of this device was refused: see CallEvent.Err
)

// CallEvent is a call frame from the server, or the refusal of one of this
// device's call frames (Action CallError, with Err).
type CallEvent struct {
	Call
	Action       string
	FromUserID   string // who it is from; for missed, the callee (no device)
	FromDeviceID string // the device to Signal back to
	Payload      json.RawMessage
	Err          *Error
}

// callEventsBuffer is the capacity of the CallEvents channel.
const callEventsBuffer = 256

// ErrNotConnected is returned by a call action while the Conn reconnects:
// call frames are not queued (a ring or an ICE candidate is stale by the
// time a socket is back).
var ErrNotConnected = errors.New("client: not connected; try again")

// CallEvents yields call events for this device. They are not stored and
// not replayed: read them promptly (when the channel is full, new ones are
// dropped and logged). It is closed when the Conn ends.
func (c *Conn) CallEvents() <-chan CallEvent { return c.callEvents }

// NewCallID returns a random call id.
func NewCallID() string { return "call_" + rand.Text() }

// Invite rings every device of the other member of a direct conversation
// and returns the call; its id is new (NewCallID). The answer comes as a
// CallEvent: accept (then Signal), declined or missed.
func (c *Conn) Invite(ctx context.Context, conversation string, payload json.RawMessage) (Call, error) {
	call := Call{Conversation: conversation, ID: NewCallID()}
	return call, c.writeCall(ctx, call, wire.CallInvite, "", payload)
}

// Accept answers a ringing call on this device.
func (c *Conn) Accept(ctx context.Context, call Call, payload json.RawMessage) error {
	return c.writeCall(ctx, call, wire.CallAccept, "", payload)
}

// Decline refuses a ringing call on this device.
func (c *Conn) Decline(ctx context.Context, call Call, payload json.RawMessage) error {
	return c.writeCall(ctx, call, wire.CallDecline, "", payload)
}

// Signal sends an SDP offer or answer or an ICE candidate to the other
// party's device (a CallEvent's FromDeviceID) of an answered call.
func (c *Conn) Signal(ctx context.Context, call Call, toDevice string, payload json.RawMessage) error {
	return c.writeCall(ctx, call, wire.CallSignal, toDevice, payload)
}

// EndCall hangs up (or, as the caller, stops the ringing).
func (c *Conn) EndCall(ctx context.Context, call Call, payload json.RawMessage) error {
	return c.writeCall(ctx, call, wire.CallEnd, "", payload)
}

// writeCall writes one call frame on the current socket.
func (c *Conn) writeCall(ctx context.Context, call Call, action, toDevice string, payload json.RawMessage) error {
	frame, err := json.Marshal(wire.Call{Type: wire.TypeCall, CallID: call.ID, Conversation: call.Conversation,
		Action: action, ToDevice: toDevice, Payload: payload})
	if err != nil {
		return err
	}
	c.mu.Lock()
	ws, closing := c.ws, c.closing
	c.mu.Unlock()
	if closing {
		return ErrClosed
	}
	if ws == nil {
		return ErrNotConnected
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.WriteTimeout)
	defer cancel()
	return ws.Write(ctx, websocket.MessageText, frame)
}

// callEvent hands a call frame, or an error frame about a call, to the
// application without blocking the reader.
func (c *Conn) callEvent(f *serverFrame) {
	e := CallEvent{Call: Call{Conversation: f.Conversation, ID: f.CallID}, Action: f.Action,
		FromUserID: f.From.UserID, FromDeviceID: f.From.DeviceID, Payload: f.Payload}
	if f.Type == wire.TypeError {
		e.Action, e.Err = CallError, f.err()
	}
	select {
	case c.callEvents <- e:
	default:
		c.log.Warn("switchboard: call event dropped: CallEvents is full", "call", f.CallID, "action", e.Action)
	}
}

// Codes of refused call frames, as found in a CallEvent's Err.Code.
const (
	CodeNoSuchCall   = wire.CodeNoSuchCall   // the call is not this device's: unknown, over, or not ringing it
	CodeInvalidCall  = wire.CodeInvalidCall  // a bad call frame, a call id in use, or a signal to a device not the other party
	CodeNotSupported = wire.CodeNotSupported // an invite in a group
)
