package calls

import (
	"context"
	"time"

	"github.com/switchboard-chat/switchboard/wire"
)

// opTimeout bounds the KV work of a timer or a socket's open or close,
// which have no caller's context.
const opTimeout = 10 * time.Second

// armRing makes this node end the call at key as missed at until, unless
// it was answered, declined or ended by then. The caller's node and each
// ringing device's node arm it; the compare-and-swap lets one of them act,
// so a node that dies meanwhile does not leave the caller ringing.
func (s *Service) armRing(key string, until time.Time) {
	s.after(until.Sub(s.cfg.Now()), func() { s.expire(key) })
}

// expire ends the call at key as missed if it still rings.
func (s *Service) expire(key string) {
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	now := s.cfg.Now().UnixMilli()
	r, v, err := s.update(ctx, key, func(r *record) (*record, verdict, error) {
		if r == nil || r.answered() {
			return nil, keep, nil
		}
		if now < r.RingUntil {
			// Armed early by a clock that runs ahead: try again at the deadline.
			s.armRing(key, time.UnixMilli(r.RingUntil))
			return nil, keep, nil
		}
		return r, remove, nil
	})
	if err != nil {
		s.cfg.Logger.Warn("ring timeout not applied", "call", key, "err", err)
		return
	}
	if v != remove {
		return
	}
	s.ended(ctx, r)
	s.publish(ctx, r, wire.CallMissed, Party{User: r.Callee}, nil,
		append([]string{r.Caller.Device}, r.Ringing...), envelope{Done: key})
	if s.cfg.Missed == nil {
		s.cfg.Logger.Info("call missed", "call", r.ID, "conversation", r.Conv)
		return
	}
	if err := s.cfg.Missed.RecordMissed(ctx, r.Conv, r.ID, r.Caller, r.Callee); err != nil {
		s.cfg.Logger.Warn("missed call not stored", "call", r.ID, "conversation", r.Conv, "err", err)
	}
}

// Connected tells the signalling that a device's socket opened here (at
// opened, Unix ns). If the device takes part in a call, maybe one it
// started on another node, its reconnect grace ends and this node watches
// its socket from now on.
func (s *Service) Connected(device string, opened int64) {
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	key, err := s.kv.Get(ctx, deviceKey(device))
	if err != nil {
		// Debug: during a Redis outage every reconnecting device gets here.
		s.cfg.Logger.Debug("call index not read", "device", device, "err", err)
		return
	}
	if key == nil {
		return
	}
	_, v, err := s.update(ctx, string(key), func(r *record) (*record, verdict, error) {
		if r == nil || !r.isParty(device) || r.Seen[device] >= opened {
			return nil, keep, nil
		}
		if r.Seen == nil {
			r.Seen = map[string]int64{}
		}
		r.Seen[device] = opened
		delete(r.Gone, device)
		return r, save, nil
	})
	if err != nil {
		s.cfg.Logger.Warn("call reconnect not noted", "device", device, "err", err)
	}
	if v == save {
		s.remember(device, string(key))
	}
}

// Disconnected tells the signalling that a device's socket that opened at
// opened closed here, and no other socket of it is here. A call it takes
// part in ends after the reconnect grace unless a newer socket of it opens
// (here or on another node) by then.
func (s *Service) Disconnected(device string, opened int64) {
	keys := s.localCalls(device)
	if len(keys) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	for _, key := range keys {
		_, v, err := s.update(ctx, key, func(r *record) (*record, verdict, error) {
			if r == nil || !r.isParty(device) || r.Seen[device] > opened {
				return nil, keep, nil // over, or a newer socket of it opened meanwhile
			}
			if r.Gone == nil {
				r.Gone = map[string]int64{}
			}
			r.Gone[device] = opened
			return r, save, nil
		})
		if err != nil {
			s.cfg.Logger.Warn("call disconnect not noted", "device", device, "err", err)
			continue
		}
		if v != save {
			s.forget(device, key)
			continue
		}
		s.after(s.cfg.ReconnectGrace, func() { s.gone(key, device, opened) })
	}
}

// gone ends the call at key if device's socket that opened at opened is
// still the last one it had.
func (s *Service) gone(key, device string, opened int64) {
	ctx, cancel := context.WithTimeout(s.ctx, opTimeout)
	defer cancel()
	r, v, err := s.update(ctx, key, func(r *record) (*record, verdict, error) {
		if g, ok := r.goneSince(device); !ok || g != opened {
			return nil, keep, nil
		}
		return r, remove, nil
	})
	if err != nil {
		s.cfg.Logger.Warn("reconnect grace not applied", "call", key, "err", err)
		return
	}
	if v != remove {
		return
	}
	s.ended(ctx, r)
	s.publish(ctx, r, wire.CallEnd, r.party(device), nil, s.others(r, device), envelope{Done: key})
}

// goneSince returns when the socket whose close started device's grace opened.
func (r *record) goneSince(device string) (int64, bool) {
	if r == nil {
		return 0, false
	}
	g, ok := r.Gone[device]
	return g, ok
}

// party names a party device with its user.
func (r *record) party(device string) Party {
	if device == r.Caller.Device {
		return r.Caller
	}
	return Party{User: r.Callee, Device: device}
}
