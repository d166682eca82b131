package calls

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Party is one side's device in a call.
type Party struct {
	User   string `json:"user"`
	Device string `json:"device"`
}

// record is a call's state in the KV. A call that ended has no record: a
// late frame about it gets no_such_call.
type record struct {
	ID      string   `json:"id"`
	Conv    string   `json:"conv"`
	Caller  Party    `json:"caller"`
	Callee  string   `json:"callee"`            // user id
	Ringing []string `json:"ringing,omitempty"` // callee devices ringing, until one accepts
	Answer  string   `json:"answer,omitempty"`  // the callee device that accepted; "" while ringing
	// RingUntil is when a call nobody answered is missed (Unix ms).
	RingUntil int64 `json:"ring_until"`
	// Seen is, per party device, when its newest known socket opened (Unix
	// ns), and Gone when the socket whose close started the reconnect grace
	// opened: a socket that closes after a newer one registered elsewhere
	// does not end the call.
	Seen map[string]int64 `json:"seen,omitempty"`
	Gone map[string]int64 `json:"gone,omitempty"`
}

// answered reports whether the callee accepted.
func (r *record) answered() bool { return r.Answer != "" }

// peerOf returns the other party's device of a party device, or "".
func (r *record) peerOf(device string) string {
	switch {
	case !r.answered():
		return ""
	case device == r.Caller.Device:
		return r.Answer
	case device == r.Answer:
		return r.Caller.Device
	}
	return ""
}

// isParty reports whether device takes part: the caller's, the one that
// accepted, or (while ringing) the caller's only.
func (r *record) isParty(device string) bool {
	return device == r.Caller.Device || (r.answered() && device == r.Answer)
}

// ringing reports whether device is one of the callee's ringing devices.
func (r *record) ringing(device string) bool {
	return !r.answered() && slices.Contains(r.Ringing, device)
}

func recordKey(conv, callID string) string { return "call:" + conv + ":" + callID }
func deviceKey(device string) string       { return "calldev:" + device }

// errConflict means the record changed under an update too many times in a row.
var errConflict = errors.New("calls: the call record keeps changing")

// verdict is what an update's step decided.
type verdict int

const (
	keep   verdict = iota // leave the record as it was
	save                  // write the changed record
	remove                // the call is over: delete the record
)

// update reads the record at key, lets step decide on it (nil: there is
// none) and writes what step returns with compare-and-swap, again from the
// read if another node changed it meanwhile. It returns step's record and
// verdict; step may run several times and must only change the record it
// is given (or return a new one).
func (s *Service) update(ctx context.Context, key string, step func(cur *record) (*record, verdict, error)) (*record, verdict, error) {
	for range 16 {
		old, err := s.kv.Get(ctx, key)
		if err != nil {
			return nil, keep, fmt.Errorf("read call: %w", err)
		}
		var r *record
		if old != nil {
			r = new(record)
			if err := json.Unmarshal(old, r); err != nil {
				return nil, keep, fmt.Errorf("decode call %s: %w", key, err)
			}
		}
		r, v, err := step(r)
		if err != nil || v == keep {
			return r, keep, err
		}
		var next []byte
		ttl := s.cfg.CallTTL
		if v == save {
			if next, err = json.Marshal(r); err != nil {
				return nil, keep, err
			}
			if !r.answered() {
				ttl = s.ringTTL()
			}
		}
		ok, err := s.kv.CompareAndSwap(ctx, key, old, next, ttl)
		if err != nil {
			return nil, keep, fmt.Errorf("write call: %w", err)
		}
		if ok {
			return r, v, nil
		}
	}
	return nil, keep, errConflict
}
