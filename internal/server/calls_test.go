package server_test

import (
	"testing"
)

// TestCallFramesOnTheSocket: what the socket layer answers to call frames
// on one node (the state machine itself is internal/calls' tests): a relayed
// frame is the wire's shape with from and without to_device, refusals name
// the call, and a malformed call frame is a bad_frame.
func TestCallFramesOnTheSocket(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	a := n.signup(t, "alice", "laptop")[0]
	b := n.signup(t, "bob", "phone")[0]
	c := n.signup(t, "carol", "phone")[0]
	dm := n.conversation(t, a, "direct", b.user)
	group := n.conversation(t, a, "group", b.user, c.user)
	as, bs := n.dial(t, a.token), n.dial(t, b.token)
	as.expect(t, "synced")
	bs.expect(t, "synced")

	t.Run("an invite rings the other member with the caller as from", func(t *testing.T) {
		as.send(t, map[string]any{"type": "call", "call_id": "k1", "conversation": dm, "action": "invite", "payload": map[string]any{"v": 1}})
		f := bs.expect(t, "call")
		from, _ := f["from"].(map[string]any)
		if f["call_id"] != "k1" || f["conversation"] != dm || f["action"] != "invite" || from["user_id"] != a.user || from["device_id"] != a.id {
			t.Fatalf("the ring is %v", f)
		}
		if p, _ := f["payload"].(map[string]any); p["v"] != 1.0 {
			t.Fatalf("the payload is %v", f["payload"])
		}
		if _, ok := f["to_device"]; ok {
			t.Fatalf("a relayed frame carries to_device: %v", f)
		}
	})
	t.Run("a signal to a device that is not the other party is refused with the call id", func(t *testing.T) {
		bs.send(t, map[string]any{"type": "call", "call_id": "k1", "conversation": dm, "action": "accept"})
		as.expect(t, "call")
		as.send(t, map[string]any{"type": "call", "call_id": "k1", "conversation": dm, "action": "signal", "to_device": "dev_nobody", "payload": map[string]any{}})
		if f := as.expect(t, "error", "invalid_call"); f["call_id"] != "k1" {
			t.Fatalf("the refusal is %v", f)
		}
	})
	t.Run("an invite in a group is not_supported, naming the call", func(t *testing.T) {
		as.send(t, map[string]any{"type": "call", "call_id": "g1", "conversation": group, "action": "invite"})
		if f := as.expect(t, "error", "not_supported"); f["call_id"] != "g1" {
			t.Fatalf("the refusal is %v", f)
		}
	})
	t.Run("a call frame with a field of the wrong type is a bad_frame", func(t *testing.T) {
		as.send(t, `{"type":"call","call_id":7,"conversation":"x","action":"invite"}`)
		as.expect(t, "error", "bad_frame")
	})
	t.Run("a payload that is not an object is an invalid_call", func(t *testing.T) {
		as.send(t, map[string]any{"type": "call", "call_id": "k2", "conversation": dm, "action": "invite", "payload": []int{1}})
		as.expect(t, "error", "invalid_call")
	})
}
