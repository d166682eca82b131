package server_test

import (
	"fmt"
	"slices"
	"testing"
)

// TestMembership is issue 19's membership acceptance on one node, on each
// store: changes are events ordered with the messages, every member device
// (the acting one and the removed user's) gets them live, at sync and in
// history; a member added reads nothing from before, a member removed gets
// nothing after, senders are told (devices_mismatch), history past the
// removal is closed.
func TestMembership(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			n := startNode(t, b.open(t))
			alice := n.signup(t, "alice", "phone", "laptop")
			phone, laptop := alice[0], alice[1]
			bob := n.signup(t, "bob", "phone")[0]
			carol := n.signup(t, "carol", "phone")[0]
			conv := n.conversation(t, phone, "group", bob.user)
			path := "/v1/conversations/" + conv + "/members"

			ws := map[string]*socket{}
			for _, d := range []device{phone, bob, carol} {
				ws[d.id] = n.dial(t, d.token)
				ws[d.id].expect(t, "synced")
			}
			send := func(id string, to ...device) map[string]any {
				cts := map[string][]byte{}
				for _, d := range to {
					cts[d.id] = []byte(id + " for " + d.id)
				}
				ws[phone.id].send(t, map[string]any{"type": "send", "id": id, "conversation": conv, "ciphertexts": cts})
				return ws[phone.id].read(t)
			}
			wantEvent := func(t *testing.T, f map[string]any, seq int, kind, user string) {
				t.Helper()
				ev, _ := f["event"].(map[string]any)
				if f["type"] != "event" || f["seq"] != float64(seq) || ev["kind"] != kind || ev["user_id"] != user || f["ciphertext"] != nil {
					t.Fatalf("got %v, want event %d %s of %s", f, seq, kind, user)
				}
			}
			change := func(t *testing.T, method, p string, token string, body any, want int) {
				t.Helper()
				st, out := n.call(t, method, p, token, body)
				if st != 200 || out["seq"] != float64(want) {
					t.Fatalf("%s %s: %d %v, want 200 seq %d", method, p, st, out, want)
				}
			}

			if f := send("m1", laptop, bob); f["type"] != "sent" || f["seq"] != 1.0 {
				t.Fatalf("m1: %v", f)
			}
			ws[bob.id].expect(t, "message")

			t.Run("only an admin adds members, and a direct conversation has no member changes", func(t *testing.T) {
				if st, out := n.call(t, "POST", path, bob.token, map[string]any{"user_ids": []string{carol.user}}); st != 403 || out["code"] != "not_admin" {
					t.Fatalf("bob adds: %d %v, want 403 not_admin", st, out)
				}
				if st, out := n.call(t, "POST", path, carol.token, map[string]any{"user_ids": []string{carol.user}}); st != 403 || out["code"] != "not_member" {
					t.Fatalf("carol adds herself: %d %v, want 403 not_member", st, out)
				}
				direct := n.conversation(t, phone, "direct", bob.user)
				if st, out := n.call(t, "POST", "/v1/conversations/"+direct+"/members", phone.token, map[string]any{"user_ids": []string{carol.user}}); st != 409 || out["code"] != "not_group" {
					t.Fatalf("add to a direct conversation: %d %v, want 409 not_group", st, out)
				}
				if st, out := n.call(t, "POST", path, phone.token, map[string]any{"user_ids": []string{"usr_nobody"}}); st != 400 || out["code"] != "invalid_conversation" {
					t.Fatalf("add an unknown user: %d %v, want 400 invalid_conversation", st, out)
				}
				if st, out := n.call(t, "POST", "/v1/conversations/cnv_nope/members", phone.token, map[string]any{"user_ids": []string{carol.user}}); st != 404 || out["code"] != "no_such_conversation" {
					t.Fatalf("add to an unknown conversation: %d %v, want 404", st, out)
				}
			})

			t.Run("an added member's devices get the event and what follows, nothing from before", func(t *testing.T) {
				change(t, "POST", path, phone.token, map[string]any{"user_ids": []string{carol.user}}, 2)
				for _, d := range []device{phone, bob, carol} {
					wantEvent(t, ws[d.id].read(t), 2, "member_added", carol.user)
				}
				if f := send("m3-old", laptop, bob); f["type"] != "error" || f["code"] != "devices_mismatch" || fmt.Sprint(f["missing"]) != fmt.Sprint([]any{carol.id}) {
					t.Fatalf("a send without carol: %v, want devices_mismatch missing her phone", f)
				}
				if f := send("m3", laptop, bob, carol); f["seq"] != 3.0 {
					t.Fatalf("m3: %v", f)
				}
				if f := ws[carol.id].expect(t, "message"); f["seq"] != 3.0 {
					t.Fatalf("carol got %v, want m3", f)
				}
				ws[bob.id].expect(t, "message")
				st, out := n.call(t, "GET", "/v1/conversations/"+conv+"/messages", carol.token, nil)
				msgs, _ := out["messages"].([]any)
				if st != 200 || len(msgs) != 2 {
					t.Fatalf("carol's history: %d %v, want her addition and m3", st, out)
				}
				wantEvent(t, map[string]any{"type": "event", "seq": msgs[0].(map[string]any)["seq"], "event": msgs[0].(map[string]any)["event"]}, 2, "member_added", carol.user)
				if _, has := msgs[0].(map[string]any)["ciphertext"]; has {
					t.Fatalf("history lists an event with a ciphertext: %v", msgs[0])
				}
			})

			t.Run("conversations list the admins, and an admin makes another", func(t *testing.T) {
				c := listed(t, n, bob, conv)
				if c == nil || fmt.Sprint(c["admins"]) != fmt.Sprint([]any{phone.user}) || len(c["members"].([]any)) != 3 {
					t.Fatalf("conversation %v, want 3 members and alice the admin", c)
				}
				change(t, "PATCH", path+"/"+bob.user, phone.token, map[string]any{"role": "admin"}, 4)
				for _, d := range []device{phone, bob, carol} {
					f := ws[d.id].read(t)
					wantEvent(t, f, 4, "role_changed", bob.user)
					if f["event"].(map[string]any)["role"] != "admin" {
						t.Fatalf("role_changed without role admin: %v", f)
					}
				}
			})

			t.Run("a removed member gets the removal and nothing more, and senders are told", func(t *testing.T) {
				change(t, "DELETE", path+"/"+carol.user, bob.token, nil, 5)
				for _, d := range []device{phone, bob, carol} {
					wantEvent(t, ws[d.id].read(t), 5, "member_removed", carol.user)
				}
				if f := send("m6-old", laptop, bob, carol); f["code"] != "devices_mismatch" || fmt.Sprint(f["extra"]) != fmt.Sprint([]any{carol.id}) {
					t.Fatalf("a send to carol's phone: %v, want devices_mismatch with it under extra", f)
				}
				if f := send("m6", laptop, bob); f["seq"] != 6.0 {
					t.Fatalf("m6: %v", f)
				}
				ws[bob.id].expect(t, "message")
				ws[carol.id].send(t, map[string]any{"type": "ping"})
				ws[carol.id].expect(t, "pong") // m6 did not come first
				ws[carol.id].send(t, map[string]any{"type": "ack", "conversation": conv, "seq": 6})
				ws[carol.id].expect(t, "error", "not_member")
			})

			t.Run("a former member's history stops at the removal", func(t *testing.T) {
				st, out := n.call(t, "GET", "/v1/conversations/"+conv+"/messages", carol.token, nil)
				msgs, _ := out["messages"].([]any)
				var seqs []float64
				for _, m := range msgs {
					seqs = append(seqs, m.(map[string]any)["seq"].(float64))
				}
				if st != 200 || !slices.Equal(seqs, []float64{2, 3, 4, 5}) {
					t.Fatalf("carol's history: %d %v, want seqs 2 to 5", st, out)
				}
				if st, out := n.call(t, "GET", "/v1/conversations/"+conv+"/messages?after=5", carol.token, nil); st != 403 || out["code"] != "not_member" {
					t.Fatalf("carol's history after her removal: %d %v, want 403 not_member", st, out)
				}
			})

			t.Run("sync replays events with the messages, and a former member's up to the removal", func(t *testing.T) {
				lws := n.dial(t, laptop.token)
				var got []string
				for {
					f := lws.read(t)
					if f["type"] == "synced" {
						break
					}
					got = append(got, fmt.Sprintf("%v %v", f["type"], f["seq"]))
				}
				want := []string{"message 1", "event 2", "message 3", "event 4", "event 5", "message 6"}
				if !slices.Equal(got, want) {
					t.Fatalf("laptop's sync: %q, want %q", got, want)
				}
				ws[carol.id].c.CloseNow()
				cws := n.dial(t, carol.token)
				got = nil
				for {
					f := cws.read(t)
					if f["type"] == "synced" {
						break
					}
					got = append(got, fmt.Sprintf("%v %v", f["type"], f["seq"]))
				}
				if want := []string{"event 2", "message 3", "event 4", "event 5"}; !slices.Equal(got, want) {
					t.Fatalf("carol's sync: %q, want %q", got, want)
				}
				cws.send(t, map[string]any{"type": "ack", "conversation": conv, "seq": 5})
				cws.send(t, map[string]any{"type": "ping"})
				cws.expect(t, "pong") // the ack of her removal is taken
			})

			t.Run("any member leaves; the last admin leaving hands the group on", func(t *testing.T) {
				change(t, "DELETE", path+"/"+phone.user, phone.token, nil, 7)
				wantEvent(t, ws[bob.id].read(t), 7, "member_left", phone.user)
				change(t, "DELETE", path+"/"+bob.user, bob.token, nil, 8)
				if c := listed(t, n, bob, conv); c != nil {
					t.Fatalf("bob's conversations after leaving list the group: %v", c)
				}
			})
		})
	}
}

// TestLastAdminLeaving: when a group's only admin leaves, the member with
// the smallest id becomes admin, announced by a role_changed event.
func TestLastAdminLeaving(t *testing.T) {
	n := startNode(t, backends[0].open(t))
	alice := n.signup(t, "alice", "phone")[0]
	bob := n.signup(t, "bob", "phone")[0]
	carol := n.signup(t, "carol", "phone")[0]
	conv := n.conversation(t, alice, "group", bob.user, carol.user)
	bws := n.dial(t, bob.token)
	bws.expect(t, "synced")
	if st, out := n.call(t, "DELETE", "/v1/conversations/"+conv+"/members/"+alice.user, alice.token, nil); st != 200 || out["seq"] != 1.0 {
		t.Fatalf("alice leaves: %d %v", st, out)
	}
	heir := min(bob.user, carol.user)
	if f := bws.expect(t, "event"); f["event"].(map[string]any)["kind"] != "member_left" {
		t.Fatalf("got %v, want member_left", f)
	}
	f := bws.expect(t, "event")
	if ev := f["event"].(map[string]any); ev["kind"] != "role_changed" || ev["user_id"] != heir || ev["role"] != "admin" || f["seq"] != 2.0 {
		t.Fatalf("got %v, want role_changed making %s admin at seq 2", f, heir)
	}
	_, out := n.call(t, "GET", "/v1/conversations", bob.token, nil)
	if c := out["conversations"].([]any)[0].(map[string]any); fmt.Sprint(c["admins"]) != fmt.Sprint([]any{heir}) {
		t.Fatalf("admins = %v, want %s", c["admins"], heir)
	}
}

// listed returns conversation conv as d's user's list has it, or nil.
func listed(t *testing.T, n *node, d device, conv string) map[string]any {
	t.Helper()
	st, out := n.call(t, "GET", "/v1/conversations", d.token, nil)
	if st != 200 {
		t.Fatalf("list conversations: %d %v", st, out)
	}
	for _, c := range out["conversations"].([]any) {
		if c := c.(map[string]any); c["conversation_id"] == conv {
			return c
		}
	}
	return nil
}
