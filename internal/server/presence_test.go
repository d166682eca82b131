package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/server"
)

// next returns the next frame of one of the given types, skipping the
// others (synced, messages, receipts...), failing after 30 s.
func (s *socket) next(t *testing.T, types ...string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := s.readErr(time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for %v: %v", types, err)
		}
		for _, ty := range types {
			if f["type"] == ty {
				return f
			}
		}
	}
}

func TestPresence(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	alice := n.signup(t, "alice", "phone")[0]
	bob := n.signup(t, "bob", "phone")[0]
	carol := n.signup(t, "carol", "phone")[0]
	n.conversation(t, alice, "direct", bob.user)

	a := n.dial(t, alice.token)
	a.expect(t, "synced")
	a.send(t, map[string]any{"type": "presence_subscribe", "users": []string{carol.user, bob.user}})
	t.Run("a subscribe answers each watchable user's state at once, strangers are ignored", func(t *testing.T) {
		f := a.next(t, "presence", "error")
		if f["user_id"] != bob.user || f["online"] != false || f["last_seen"] != nil {
			t.Fatalf("got %v, want bob offline, never seen", f)
		}
	})
	t.Run("a watched user's first socket announces them online; a stranger's does not", func(t *testing.T) {
		c := n.dial(t, carol.token)
		c.expect(t, "synced")
		b := n.dial(t, bob.token)
		b.expect(t, "synced")
		f := a.next(t, "presence", "error")
		if f["user_id"] != bob.user || f["online"] != true {
			t.Fatalf("got %v, want bob online", f)
		}
		t.Cleanup(func() { b.c.CloseNow() })
	})
	t.Run("GET presence answers a contact and 404s a stranger", func(t *testing.T) {
		if st, body := n.call(t, "GET", "/v1/users/"+bob.user+"/presence", alice.token, nil); st != 200 || body["online"] != true || body["user_id"] != bob.user {
			t.Fatalf("bob's presence for alice: %d %v", st, body)
		}
		for _, who := range []string{carol.user, "usr_nobody"} {
			if st, body := n.call(t, "GET", "/v1/users/"+who+"/presence", alice.token, nil); st != 404 || body["code"] != "not_found" {
				t.Fatalf("%s's presence for alice: %d %v, want 404 not_found", who, st, body)
			}
		}
	})
	t.Run("a reconnect within 2 s is not announced; the last socket closing is, with last_seen", func(t *testing.T) {
		// bob's socket from the previous case is closed by its cleanup: he
		// reconnects at once, which must not show him offline.
		b := n.dial(t, bob.token)
		b.expect(t, "synced")
		b.c.CloseNow()
		b = n.dial(t, bob.token)
		b.expect(t, "synced")
		before := time.Now().Add(-time.Second)
		b.c.CloseNow()
		f := a.next(t, "presence")
		if f["user_id"] != bob.user || f["online"] != false {
			t.Fatalf("got %v, want bob offline (and no offline before it: the reconnects were within 2 s)", f)
		}
		ls, err := time.Parse(time.RFC3339, f["last_seen"].(string))
		if err != nil || ls.Before(before) || ls.After(time.Now()) {
			t.Fatalf("last_seen %v: want the time bob's socket closed", f["last_seen"])
		}
	})
	t.Run("over 256 users is refused", func(t *testing.T) {
		users := make([]string, 257)
		for i := range users {
			users[i] = bob.user
		}
		a.send(t, map[string]any{"type": "presence_subscribe", "users": users})
		a.next(t, "error")
	})
}

func TestTyping(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	ad := n.signup(t, "alice", "phone", "laptop")
	bob := n.signup(t, "bob", "phone")[0]
	conv := n.conversation(t, ad[0], "direct", bob.user)
	a1, a2, b := n.dial(t, ad[0].token), n.dial(t, ad[1].token), n.dial(t, bob.token)
	for _, s := range []*socket{a1, a2, b} {
		s.expect(t, "synced")
	}
	start := map[string]any{"type": "typing", "conversation": conv, "state": "start"}
	stop := map[string]any{"type": "typing", "conversation": conv, "state": "stop"}

	t.Run("a start reaches the other members' devices with the sender, not the sender's own", func(t *testing.T) {
		a1.send(t, start)
		f := b.next(t, "typing", "error")
		if f["user_id"] != ad[0].user || f["state"] != "start" || f["conversation"] != conv {
			t.Fatalf("bob got %v", f)
		}
		// bob's start is the next typing frame alice's laptop gets: it had none of her own.
		b.send(t, start)
		if f := a2.next(t, "typing", "error"); f["user_id"] != bob.user {
			t.Fatalf("alice's laptop got %v, want bob's start only", f)
		}
	})
	t.Run("a start within a second of the last is dropped; a stop goes through", func(t *testing.T) {
		a1.send(t, start)
		a1.send(t, stop)
		if f := b.next(t, "typing", "error"); f["state"] != "stop" {
			t.Fatalf("bob got %v, want the stop (the repeated start dropped)", f)
		}
	})
	t.Run("a start not refreshed is stopped by the server after 6 s", func(t *testing.T) {
		a1.send(t, start)
		if f := b.next(t, "typing", "error"); f["state"] != "start" {
			t.Fatalf("bob got %v", f)
		}
		began := time.Now()
		if f := b.next(t, "typing", "error"); f["state"] != "stop" || time.Since(began) < 5*time.Second {
			t.Fatalf("bob got %v after %v, want the server's stop after 6 s", f, time.Since(began))
		}
	})
	t.Run("a non-member's typing is refused", func(t *testing.T) {
		carol := n.signup(t, "carol", "phone")[0]
		c := n.dial(t, carol.token)
		c.expect(t, "synced")
		c.send(t, start)
		c.expect(t, "error", "not_member")
	})
}

func TestReceipts(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	alice := n.signup(t, "alice", "phone")[0]
	bd := n.signup(t, "bob", "phone", "laptop")
	conv := n.conversation(t, alice, "direct", bd[0].user)
	a, b1, b2 := n.dial(t, alice.token), n.dial(t, bd[0].token), n.dial(t, bd[1].token)
	for _, s := range []*socket{a, b1, b2} {
		s.expect(t, "synced")
	}
	for i := range 3 {
		a.send(t, map[string]any{"type": "send", "id": string(rune('a' + i)), "conversation": conv, "ciphertext": []byte("x")})
		a.next(t, "sent")
	}
	t.Run("an ack moves the delivered mark; the sender sees it", func(t *testing.T) {
		b1.send(t, map[string]any{"type": "ack", "conversation": conv, "seq": 3})
		f := a.next(t, "receipt")
		if f["user_id"] != bd[0].user || f["delivered"] != 3.0 || f["conversation"] != conv {
			t.Fatalf("alice got %v", f)
		}
	})
	t.Run("reads are coalesced to one receipt a second, seen by the others and the reader's other devices", func(t *testing.T) {
		for seq := 1; seq <= 3; seq++ {
			b1.send(t, map[string]any{"type": "read", "conversation": conv, "seq": seq})
		}
		for _, s := range []*socket{a, b2} {
			frames := 0
			for {
				f := s.next(t, "receipt", "error")
				frames++
				if f["type"] == "error" {
					t.Fatalf("got %v", f)
				}
				if f["read"] == 3.0 {
					break
				}
			}
			if frames > 2 { // three reads within a moment: one window, or two at a boundary
				t.Fatalf("%d receipts for three reads in a moment", frames)
			}
		}
	})
	t.Run("GET receipts lists every member's marks", func(t *testing.T) {
		st, body := n.call(t, "GET", "/v1/conversations/"+conv+"/receipts", alice.token, nil)
		if st != 200 {
			t.Fatalf("%d %v", st, body)
		}
		got := map[string][2]float64{}
		for _, r := range body["receipts"].([]any) {
			m := r.(map[string]any)
			got[m["user_id"].(string)] = [2]float64{m["delivered"].(float64), m["read"].(float64)}
		}
		if got[bd[0].user] != [2]float64{3, 3} || got[alice.user] != [2]float64{0, 0} {
			t.Fatalf("receipts %v", got)
		}
	})
	t.Run("with receipts off a user's reads are hidden from others, and they see nobody's", func(t *testing.T) {
		if st, body := n.call(t, "PATCH", "/v1/accounts/me", bd[0].token, map[string]any{"read_receipts": false}); st != 200 {
			t.Fatalf("PATCH: %d %v", st, body)
		}
		a.send(t, map[string]any{"type": "send", "id": "d", "conversation": conv, "ciphertext": []byte("x")})
		a.next(t, "sent")
		a.send(t, map[string]any{"type": "read", "conversation": conv, "seq": 4})
		b1.send(t, map[string]any{"type": "read", "conversation": conv, "seq": 4})
		b1.send(t, map[string]any{"type": "ack", "conversation": conv, "seq": 4})
		// alice sees bob's delivered 4 but never his read 4.
		for {
			f := a.next(t, "receipt")
			if f["user_id"] != bd[0].user {
				continue
			}
			if f["read"] != 0.0 {
				t.Fatalf("alice saw bob's read: %v", f)
			}
			if f["delivered"] == 4.0 {
				break
			}
		}
		_, body := n.call(t, "GET", "/v1/conversations/"+conv+"/receipts", alice.token, nil)
		_, bobs := n.call(t, "GET", "/v1/conversations/"+conv+"/receipts", bd[0].token, nil)
		for _, r := range body["receipts"].([]any) {
			if m := r.(map[string]any); m["user_id"] == bd[0].user && m["read"] != 0.0 {
				t.Fatalf("alice's GET shows bob's read: %v", m)
			}
		}
		for _, r := range bobs["receipts"].([]any) {
			m := r.(map[string]any)
			if m["user_id"] == alice.user && m["read"] != 0.0 {
				t.Fatalf("bob's GET shows alice's read with his receipts off: %v", m)
			}
			if m["user_id"] == bd[0].user && m["read"] != 4.0 {
				t.Fatalf("bob's GET hides his own read: %v", m)
			}
		}
	})
	t.Run("a read past the newest message is refused", func(t *testing.T) {
		b1.send(t, map[string]any{"type": "read", "conversation": conv, "seq": 99})
		b1.next(t, "error")
	})
}

// TestReceiptsInALargeGroup: past chat.ReceiptMaxMembers members, receipts
// go to the reader's own devices only (docs/protocol.md).
func TestReceiptsInALargeGroup(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	alice := n.signup(t, "alice", "phone")[0]
	bd := n.signup(t, "bob", "phone", "laptop")
	members := []string{bd[0].user}
	for i := range chat.ReceiptMaxMembers {
		name := fmt.Sprintf("member%d", i)
		st, body := n.call(t, "POST", "/v1/accounts", "", map[string]string{"username": name, "password": "password-" + name})
		if st != 201 {
			t.Fatalf("create %s: %d %v", name, st, body)
		}
		members = append(members, body["user_id"].(string))
	}
	conv := n.conversation(t, alice, "group", members...)
	a, b1, b2 := n.dial(t, alice.token), n.dial(t, bd[0].token), n.dial(t, bd[1].token)
	for _, s := range []*socket{a, b1, b2} {
		s.expect(t, "synced")
	}
	a.send(t, map[string]any{"type": "send", "id": "m1", "conversation": conv, "ciphertext": []byte("x")})
	a.next(t, "sent")
	b1.send(t, map[string]any{"type": "ack", "conversation": conv, "seq": 1})
	b1.send(t, map[string]any{"type": "read", "conversation": conv, "seq": 1})
	if f := b2.next(t, "receipt"); f["read"] != 1.0 || f["user_id"] != bd[0].user {
		t.Fatalf("bob's laptop got %v, want his read", f)
	}
	// The same relay wrote to every local socket it meant to: alice's
	// frames up to her pong hold no receipt.
	a.send(t, map[string]any{"type": "ping"})
	if f := a.next(t, "receipt", "pong"); f["type"] != "pong" {
		t.Fatalf("alice got %v in a group of %d", f, len(members)+1)
	}
}

// TestSheddingPresenceAndTyping: a node run with NoPresence and NoTyping
// (--no-presence, --no-typing: the backup plan's first step) answers
// presence requests unavailable and relays no typing, while messages
// still flow.
func TestSheddingPresenceAndTyping(t *testing.T) {
	n := startNode(t, backends[0].open(t), func(_ *chat.Config, sc *server.Config) { sc.NoPresence, sc.NoTyping = true, true })
	alice := n.signup(t, "alice", "phone")[0]
	bob := n.signup(t, "bob", "phone")[0]
	conv := n.conversation(t, alice, "direct", bob.user)
	a, b := n.dial(t, alice.token), n.dial(t, bob.token)
	a.expect(t, "synced")
	b.expect(t, "synced")

	a.send(t, map[string]any{"type": "presence_subscribe", "users": []string{bob.user}})
	if f := a.next(t, "presence", "error"); f["type"] != "error" || f["code"] != "unavailable" {
		t.Fatalf("presence_subscribe on a node shedding presence: %v, want error unavailable", f)
	}
	if st, body := n.call(t, "GET", "/v1/users/"+bob.user+"/presence", alice.token, nil); st != 503 || body["code"] != "unavailable" {
		t.Fatalf("GET presence: %d %v, want 503 unavailable", st, body)
	}
	a.send(t, map[string]any{"type": "typing", "conversation": conv, "state": "start"})
	a.send(t, map[string]any{"type": "send", "id": "m1", "conversation": conv, "ciphertext": []byte("x")})
	// The message comes; no typing frame before it (it was sent first).
	if f := b.next(t, "typing", "message"); f["type"] != "message" {
		t.Fatalf("bob got %v before the message, want no typing notice", f)
	}
}
