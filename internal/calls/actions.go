package calls

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// Handle acts on a call frame from a party's device. opened is when that
// device's socket opened (Unix ns): the reconnect grace compares sockets by
// it. The error, an *sb.Error with a wire code, is answered with an error
// frame that carries the call id.
func (s *Service) Handle(ctx context.Context, from Party, opened int64, f *wire.Call) error {
	if err := valid(f); err != nil {
		return err
	}
	key := recordKey(f.Conversation, f.CallID)
	var err error
	switch f.Action {
	case wire.CallInvite:
		err = s.invite(ctx, from, opened, key, f)
	case wire.CallAccept:
		err = s.accept(ctx, from, opened, key, f)
	case wire.CallDecline:
		err = s.decline(ctx, from, key, f)
	case wire.CallSignal:
		err = s.signal(ctx, from, key, f)
	case wire.CallEnd:
		err = s.end(ctx, from, key, f)
	}
	var e *sb.Error
	if err != nil && !errors.As(err, &e) {
		s.cfg.Logger.Warn("call signalling failed", "call", f.CallID, "action", f.Action, "err", err)
		return sb.Errorf(sb.EUNAVAILABLE, wire.CodeUnavailable, "call state unavailable; try again")
	}
	return err
}

// valid checks a call frame's shape.
func valid(f *wire.Call) error {
	bad := func(format string, args ...any) error {
		return sb.Errorf(sb.EINVALID, wire.CodeInvalidCall, format, args...)
	}
	switch {
	case f.CallID == "" || len(f.CallID) > wire.MaxCallID:
		return bad("call_id must be 1 to %d bytes", wire.MaxCallID)
	case f.Conversation == "":
		return bad("a call frame needs a conversation")
	case !slices.Contains(wire.CallClientActions, f.Action):
		return bad("unknown call action %q", f.Action)
	case (f.Action == wire.CallSignal) != (f.ToDevice != ""):
		return bad("to_device is for signal, which needs it")
	}
	for _, c := range []byte(f.CallID) {
		if c <= ' ' || c > '~' {
			return bad("call_id must be printable ASCII without spaces")
		}
	}
	if p := bytes.TrimSpace(f.Payload); len(p) > 0 && !bytes.Equal(p, []byte("null")) && p[0] != '{' {
		return bad("payload must be a JSON object")
	}
	return nil
}

func noSuchCall() error {
	return sb.Errorf(sb.ENOTFOUND, wire.CodeNoSuchCall, "no such call for this device")
}

// invite creates the record and rings every device of the callee.
func (s *Service) invite(ctx context.Context, from Party, opened int64, key string, f *wire.Call) error {
	callee, devices, err := s.dir.CallPeer(ctx, from.User, f.Conversation)
	if err != nil {
		return err
	}
	r := &record{ID: f.CallID, Conv: f.Conversation, Caller: from, Callee: callee, Ringing: devices,
		RingUntil: s.cfg.Now().Add(s.cfg.RingTimeout).UnixMilli(), Seen: map[string]int64{from.Device: opened}}
	_, v, err := s.update(ctx, key, func(cur *record) (*record, verdict, error) {
		if cur != nil {
			return nil, keep, sb.Errorf(sb.ECONFLICT, wire.CodeInvalidCall, "call_id already in use in this conversation")
		}
		return r, save, nil
	})
	if err != nil || v != save {
		return err
	}
	s.remember(from.Device, key)
	s.index(ctx, from.Device, key)
	s.publish(ctx, r, wire.CallInvite, from, f.Payload, r.Ringing,
		envelope{Ring: key, RingUntil: r.RingUntil})
	s.armRing(key, time.UnixMilli(r.RingUntil))
	return nil
}

// accept: the first ringing device to accept wins; the caller gets the
// accept, the callee's other ringing devices answered_elsewhere.
func (s *Service) accept(ctx context.Context, from Party, opened int64, key string, f *wire.Call) error {
	var others []string
	r, v, err := s.update(ctx, key, func(r *record) (*record, verdict, error) {
		if r == nil || !r.ringing(from.Device) {
			return nil, keep, noSuchCall()
		}
		others = slices.DeleteFunc(slices.Clone(r.Ringing), func(d string) bool { return d == from.Device })
		r.Answer, r.Ringing = from.Device, nil
		if r.Seen == nil {
			r.Seen = map[string]int64{}
		}
		r.Seen[from.Device] = opened
		return r, save, nil
	})
	if err != nil || v != save {
		return err
	}
	s.remember(from.Device, key)
	s.index(ctx, from.Device, key)
	s.publish(ctx, r, wire.CallAccept, from, f.Payload, []string{r.Caller.Device}, envelope{})
	s.publish(ctx, r, wire.CallAnsweredElsewhere, from, nil, others, envelope{Done: key})
	return nil
}

// decline takes a ringing device off; the last one's decline ends the call
// and the caller gets declined.
func (s *Service) decline(ctx context.Context, from Party, key string, f *wire.Call) error {
	r, v, err := s.update(ctx, key, func(r *record) (*record, verdict, error) {
		if r == nil || !r.ringing(from.Device) {
			return nil, keep, noSuchCall()
		}
		r.Ringing = slices.DeleteFunc(r.Ringing, func(d string) bool { return d == from.Device })
		if len(r.Ringing) == 0 {
			return r, remove, nil
		}
		return r, save, nil
	})
	if err != nil || v != remove {
		return err
	}
	s.ended(ctx, r)
	s.publish(ctx, r, wire.CallDeclined, from, f.Payload, []string{r.Caller.Device}, envelope{Done: key})
	return nil
}

// signal relays to the other party's device only, once the call is answered.
func (s *Service) signal(ctx context.Context, from Party, key string, f *wire.Call) error {
	raw, err := s.kv.Get(ctx, key)
	if err != nil {
		return err
	}
	var r record
	if raw == nil || json.Unmarshal(raw, &r) != nil || !r.isParty(from.Device) {
		return noSuchCall()
	}
	if peer := r.peerOf(from.Device); peer == "" || f.ToDevice != peer {
		return sb.Errorf(sb.EINVALID, wire.CodeInvalidCall, "to_device must be the other party's device of an answered call")
	}
	s.publish(ctx, &r, wire.CallSignal, from, f.Payload, []string{f.ToDevice}, envelope{})
	return nil
}

// end hangs up: from the caller while ringing (the ringing stops) or from
// either party of an answered call. A ringing callee device's end is its
// decline.
func (s *Service) end(ctx context.Context, from Party, key string, f *wire.Call) error {
	declines := false
	r, v, err := s.update(ctx, key, func(r *record) (*record, verdict, error) {
		switch {
		case r != nil && r.ringing(from.Device):
			declines = true
			return nil, keep, nil
		case r == nil || !r.isParty(from.Device):
			return nil, keep, noSuchCall()
		}
		return r, remove, nil
	})
	if declines {
		// One device of several may refuse: the others ring on.
		return s.decline(ctx, from, key, f)
	}
	if err != nil || v != remove {
		return err
	}
	s.ended(ctx, r)
	s.publish(ctx, r, wire.CallEnd, from, f.Payload, s.others(r, from.Device), envelope{Done: key})
	return nil
}

// others are the devices an end by device reaches: the other party, or
// every ringing device when the caller hangs up before an answer.
func (s *Service) others(r *record, device string) []string {
	if !r.answered() {
		return r.Ringing
	}
	return []string{r.peerOf(device)}
}

// ended forgets a removed record's indexes, here and in the KV.
func (s *Service) ended(ctx context.Context, r *record) {
	key := recordKey(r.Conv, r.ID)
	for _, d := range []string{r.Caller.Device, r.Answer} {
		if d == "" {
			continue
		}
		s.forget(d, key)
		if _, err := s.kv.CompareAndSwap(ctx, deviceKey(d), []byte(key), nil, 0); err != nil {
			s.cfg.Logger.Debug("call index not removed", "err", err)
		}
	}
}

// index notes in the KV which call a party device is in, for the node its
// next socket lands on (Connected). One call per device: a second one
// replaces it.
func (s *Service) index(ctx context.Context, device, key string) {
	for range 4 {
		old, err := s.kv.Get(ctx, deviceKey(device))
		if err == nil {
			var ok bool
			if ok, err = s.kv.CompareAndSwap(ctx, deviceKey(device), old, []byte(key), s.cfg.CallTTL); ok {
				return
			}
		}
		if err != nil {
			s.cfg.Logger.Warn("call index not written", "device", device, "err", err)
			return
		}
	}
}
