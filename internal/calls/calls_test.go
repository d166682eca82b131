package calls_test

import (
	"slices"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/wire"
)

// The state machine on two nodes that share a KV and a bus: alice's a1 is
// on node 0, bob's b1 on node 0 and b2 on node 1, unless a case says otherwise.
func TestCalls(t *testing.T) {
	t.Run("an invite rings every callee device on any node, the first accept wins and the others hear answered_elsewhere", func(t *testing.T) {
		w := newWorld(t, 2)
		a1, b1, b2 := w.connect("a1", 0), w.connect("b1", 0), w.connect("b2", 1)
		a1.must(wire.CallInvite, "dm", "c1", "", `{"sdp":"sealed"}`)
		if f := b1.expect(wire.CallInvite, "a1"); string(f.Payload) != `{"sdp":"sealed"}` || f.From.UserID != "alice" {
			t.Fatalf("the ring carries %+v", f)
		}
		b2.expect(wire.CallInvite, "a1")
		b2.must(wire.CallAccept, "dm", "c1", "", `{"k":1}`)
		if code(b1.do(wire.CallAccept, "dm", "c1", "", "")) != wire.CodeNoSuchCall {
			t.Fatal("a second accept was taken")
		}
		if f := a1.expect(wire.CallAccept, "b2"); string(f.Payload) != `{"k":1}` {
			t.Fatalf("the accept carries %s", f.Payload)
		}
		b1.expect(wire.CallAnsweredElsewhere, "b2")
		a1.quiet()
		b1.quiet()
		b2.quiet()
	})

	t.Run("a signal goes only to to_device, which must be the other party of an answered call", func(t *testing.T) {
		w := newWorld(t, 2)
		a1, b1, b2 := w.connect("a1", 0), w.connect("b1", 0), w.connect("b2", 1)
		a1.must(wire.CallInvite, "dm", "c1", "", "")
		b1.expect(wire.CallInvite, "a1")
		b2.expect(wire.CallInvite, "a1")
		if c := code(a1.do(wire.CallSignal, "dm", "c1", "b1", `{"sdp":"offer"}`)); c != wire.CodeInvalidCall {
			t.Fatalf("a signal before the answer: %q, want invalid_call", c)
		}
		b1.must(wire.CallAccept, "dm", "c1", "", "")
		a1.expect(wire.CallAccept, "b1")
		b2.expect(wire.CallAnsweredElsewhere, "b1")
		if c := code(a1.do(wire.CallSignal, "dm", "c1", "b2", `{}`)); c != wire.CodeInvalidCall {
			t.Fatalf("a signal to the callee's other device: %q, want invalid_call", c)
		}
		if c := code(a1.do(wire.CallSignal, "dm", "c1", "a1", `{}`)); c != wire.CodeInvalidCall {
			t.Fatalf("a signal to itself: %q, want invalid_call", c)
		}
		if c := code(b2.do(wire.CallSignal, "dm", "c1", "a1", `{}`)); c != wire.CodeNoSuchCall {
			t.Fatalf("a signal from a device not in the call: %q, want no_such_call", c)
		}
		a1.must(wire.CallSignal, "dm", "c1", "b1", `{"sdp":"offer"}`)
		b1.must(wire.CallSignal, "dm", "c1", "a1", `{"sdp":"answer"}`)
		if f := b1.expect(wire.CallSignal, "a1"); string(f.Payload) != `{"sdp":"offer"}` || f.ToDevice != "" {
			t.Fatalf("b1 got %+v", f)
		}
		if f := a1.expect(wire.CallSignal, "b1"); string(f.Payload) != `{"sdp":"answer"}` {
			t.Fatalf("a1 got %+v", f)
		}
		b2.quiet()
	})

	t.Run("end from either party reaches the other and the call is gone", func(t *testing.T) {
		for _, callerEnds := range []bool{true, false} {
			w, a1, b1 := answeredCall(t)
			ender, other := a1, b1
			if !callerEnds {
				ender, other = b1, a1
			}
			ender.must(wire.CallEnd, "dm", "c1", "", `{"reason":"bye"}`)
			if f := other.expect(wire.CallEnd, ender.party.Device); string(f.Payload) != `{"reason":"bye"}` {
				t.Fatalf("the end carries %s", f.Payload)
			}
			if c := code(other.do(wire.CallEnd, "dm", "c1", "", "")); c != wire.CodeNoSuchCall {
				t.Fatalf("an end of an ended call: %q, want no_such_call", c)
			}
			if n := w.kv.Len(); n != 0 {
				t.Fatalf("%d records left after the end", n)
			}
		}
	})

	t.Run("the caller's end before an answer stops every ringing device", func(t *testing.T) {
		w := newWorld(t, 2)
		a1, b1, b2 := w.connect("a1", 0), w.connect("b1", 0), w.connect("b2", 1)
		a1.must(wire.CallInvite, "dm", "c1", "", "")
		b1.expect(wire.CallInvite, "a1")
		b2.expect(wire.CallInvite, "a1")
		a1.must(wire.CallEnd, "dm", "c1", "", "")
		b1.expect(wire.CallEnd, "a1")
		b2.expect(wire.CallEnd, "a1")
		w.clock.advance(time.Minute)
		if got := w.missed.list(); len(got) != 0 {
			t.Fatalf("a cancelled call was stored as missed: %v", got)
		}
		a1.quiet()
	})

	t.Run("a decline from every ringing device ends the call and the caller gets declined", func(t *testing.T) {
		w := newWorld(t, 2)
		a1, b1, b2 := w.connect("a1", 0), w.connect("b1", 0), w.connect("b2", 1)
		a1.must(wire.CallInvite, "dm", "c1", "", "")
		b1.expect(wire.CallInvite, "a1")
		b2.expect(wire.CallInvite, "a1")
		b1.must(wire.CallDecline, "dm", "c1", "", "")
		a1.quiet() // one of two declined: b2 still rings
		if c := code(b1.do(wire.CallAccept, "dm", "c1", "", "")); c != wire.CodeNoSuchCall {
			t.Fatalf("an accept after its own decline: %q, want no_such_call", c)
		}
		b2.must(wire.CallDecline, "dm", "c1", "", `{"busy":true}`)
		if f := a1.expect(wire.CallDeclined, "b2"); string(f.Payload) != `{"busy":true}` {
			t.Fatalf("declined carries %s", f.Payload)
		}
		w.clock.advance(time.Minute)
		a1.quiet()
		if got := w.missed.list(); len(got) != 0 {
			t.Fatalf("a declined call was stored as missed: %v", got)
		}
	})

	t.Run("no answer within the ring timeout is missed, told to all and stored once", func(t *testing.T) {
		w := newWorld(t, 2)
		a1, b1, b2 := w.connect("a1", 0), w.connect("b1", 0), w.connect("b2", 1)
		a1.must(wire.CallInvite, "dm", "c1", "", "")
		b1.expect(wire.CallInvite, "a1")
		b2.expect(wire.CallInvite, "a1")
		w.clock.advance(44 * time.Second)
		a1.quiet()
		w.clock.advance(2 * time.Second) // both nodes' timers fire; one acts
		a1.expect(wire.CallMissed, "")
		b1.expect(wire.CallMissed, "")
		b2.expect(wire.CallMissed, "")
		if got := w.missed.list(); !slices.Equal(got, []string{"dm/c1/alice"}) {
			t.Fatalf("stored missed calls %v, want one", got)
		}
		a1.quiet()
		if n := w.kv.Len(); n != 0 {
			t.Fatalf("%d records left after the miss", n)
		}
	})

	t.Run("a callee without a connected device still misses the call after the timeout", func(t *testing.T) {
		w := newWorld(t, 1)
		a1 := w.connect("a1", 0)
		a1.must(wire.CallInvite, "dm", "c1", "", "")
		w.clock.advance(46 * time.Second)
		a1.expect(wire.CallMissed, "")
		if got := w.missed.list(); len(got) != 1 {
			t.Fatalf("stored missed calls %v, want one", got)
		}
	})

	t.Run("a party gone past the reconnect grace ends the call", func(t *testing.T) {
		w, a1, b1 := answeredCall(t)
		b1.disconnect()
		w.clock.advance(9 * time.Second)
		a1.quiet()
		w.clock.advance(2 * time.Second)
		a1.expect(wire.CallEnd, "b1")
		if n := w.kv.Len(); n != 0 {
			t.Fatalf("%d records left", n)
		}
	})

	t.Run("a party that reconnects on another node within the grace keeps the call", func(t *testing.T) {
		w, a1, b1 := answeredCall(t)
		a1.disconnect()
		w.clock.advance(5 * time.Second)
		a1 = w.connect("a1", 1) // node 0 went away: a1 lands on node 1
		w.clock.advance(time.Minute)
		b1.quiet()
		a1.must(wire.CallSignal, "dm", "c1", "b1", `{"ice":1}`)
		b1.expect(wire.CallSignal, "a1")
		// Its new node watches its socket now.
		a1.disconnect()
		w.clock.advance(11 * time.Second)
		b1.expect(wire.CallEnd, "a1")
	})

	t.Run("an old socket that closes after the device reconnected does not end the call", func(t *testing.T) {
		w, a1, b1 := answeredCall(t)
		old := a1
		w.connect("a1", 1)
		old.n.svc.Disconnected("a1", old.opened) // node 0 notices the dead socket late
		w.clock.advance(time.Minute)
		b1.quiet()
	})

	t.Run("refusals: a group, a reused call id, bad frames, strangers", func(t *testing.T) {
		w := newWorld(t, 1)
		a1, c1 := w.connect("a1", 0), w.connect("c1", 0)
		a1.must(wire.CallInvite, "dm", "c1", "", "")
		for _, tc := range []struct {
			name                          string
			d                             *device
			action, conv, id, to, payload string
			code                          string
		}{
			{"an invite in a group", a1, wire.CallInvite, "grp", "g1", "", "", wire.CodeNotSupported},
			{"an invite by a stranger", c1, wire.CallInvite, "dm", "x1", "", "", wire.CodeNotMember},
			{"an invite to a conversation that does not exist", a1, wire.CallInvite, "nope", "x2", "", "", wire.CodeNoSuchConversation},
			{"a call id in use", a1, wire.CallInvite, "dm", "c1", "", "", wire.CodeInvalidCall},
			{"no call id", a1, wire.CallInvite, "dm", "", "", "", wire.CodeInvalidCall},
			{"a call id with a space", a1, wire.CallInvite, "dm", "a b", "", "", wire.CodeInvalidCall},
			{"a call id too long", a1, wire.CallInvite, "dm", string(make([]byte, 65)), "", "", wire.CodeInvalidCall},
			{"an unknown action", a1, "ring", "dm", "c1", "", "", wire.CodeInvalidCall},
			{"a server action", a1, wire.CallMissed, "dm", "c1", "", "", wire.CodeInvalidCall},
			{"to_device on an invite", a1, wire.CallInvite, "dm", "c9", "b1", "", wire.CodeInvalidCall},
			{"a signal without to_device", a1, wire.CallSignal, "dm", "c1", "", "", wire.CodeInvalidCall},
			{"a payload that is not an object", a1, wire.CallInvite, "dm", "c8", "", `"x"`, wire.CodeInvalidCall},
			{"an accept by a device that does not ring", c1, wire.CallAccept, "dm", "c1", "", "", wire.CodeNoSuchCall},
			{"a decline by the caller", a1, wire.CallDecline, "dm", "c1", "", "", wire.CodeNoSuchCall},
		} {
			if c := code(tc.d.do(tc.action, tc.conv, tc.id, tc.to, tc.payload)); c != tc.code {
				t.Errorf("%s: %q, want %q", tc.name, c, tc.code)
			}
		}
	})
}

// answeredCall is a world of two nodes in which a1 (on node 0) called b1
// (on node 1), who answered: call c1 in conversation dm.
func answeredCall(t *testing.T) (w *world, a1, b1 *device) {
	w = newWorld(t, 2)
	a1, b1 = w.connect("a1", 0), w.connect("b1", 1)
	a1.must(wire.CallInvite, "dm", "c1", "", "")
	b1.expect(wire.CallInvite, "a1")
	b1.must(wire.CallAccept, "dm", "c1", "", "")
	a1.expect(wire.CallAccept, "b1")
	return w, a1, b1
}
