package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/switchboard-chat/switchboard"
)

// memberEvent is an event from byDevice (of byUser) in conv that applies
// change, addressed to the given devices, with the JSON body ev.
func memberEvent(conv, byUser, byDevice, ev string, change *switchboard.MemberChange, to ...string) *switchboard.Message {
	m := &switchboard.Message{ConversationID: conv, SenderUserID: byUser, SenderDeviceID: byDevice, SentAt: at(20),
		Event: []byte(ev), Change: change, Ciphertexts: make(map[string][]byte, len(to))}
	for _, d := range to {
		m.Ciphertexts[d] = nil
	}
	return m
}

func membership(t *testing.T, s switchboard.Store, conv, user string) switchboard.Membership {
	t.Helper()
	m, err := s.Membership(ctx, conv, user)
	if err != nil {
		t.Fatalf("Membership(%s, %s): %v", conv, user, err)
	}
	return m
}

func members(t *testing.T, s switchboard.Store, conv string) *switchboard.Conversation {
	t.Helper()
	c, err := s.Conversation(ctx, conv)
	if err != nil {
		t.Fatalf("Conversation(%s): %v", conv, err)
	}
	return c
}

func memberTests() []storeTest {
	return []storeTest{
		{"A group's admins are stored with it and listed with its members", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			c := &switchboard.Conversation{ID: "grp", Kind: switchboard.KindGroup, CreatedBy: w.alice.ID, CreatedAt: at(1),
				Members: []string{w.alice.ID, w.bob.ID, w.carol.ID}, Admins: []string{w.alice.ID}}
			if err := s.CreateConversation(ctx, c); err != nil {
				t.Fatalf("CreateConversation: %v", err)
			}
			if got := members(t, s, "grp"); fmt.Sprint(got.Admins) != fmt.Sprint([]string{w.alice.ID}) {
				t.Fatalf("Admins = %q, want alice", got.Admins)
			}
			list, err := s.Conversations(ctx, w.bob.ID, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range list {
				if c.ID == "grp" && fmt.Sprint(c.Admins) != fmt.Sprint([]string{w.alice.ID}) {
					t.Fatalf("Conversations: grp's Admins = %q, want alice", c.Admins)
				}
			}
			if m := membership(t, s, "grp", w.alice.ID); !m.Admin || m.LeftSeq != 0 {
				t.Fatalf("Membership(alice) = %+v, want an admin", m)
			}
			if m := membership(t, s, "grp", w.bob.ID); m.Admin {
				t.Fatalf("Membership(bob) = %+v, want no admin", m)
			}
			_, err = s.Membership(ctx, "grp", "u-nobody")
			wantNotFound(t, "Membership(a non-member)", err)
			_, err = s.Membership(ctx, "no-such-conv", w.alice.ID)
			wantNotFound(t, "Membership(an unknown conversation)", err)
		}},

		{"An event takes the next seq like a message and its recipients read it with no ciphertext", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s) // "conv": alice and bob
			appendMessage(t, s, w.perDevice("m1"))
			ev := memberEvent(w.conv.ID, w.alice.ID, w.a1.ID, `{"kind":"x"}`, nil, w.a1.ID, w.a2.ID, w.b1.ID)
			stored := appendMessage(t, s, ev)
			if stored.Seq != 2 {
				t.Fatalf("event seq = %d, want 2", stored.Seq)
			}
			appendMessage(t, s, w.perDevice("m3"))
			for _, d := range []string{w.a2.ID, w.b1.ID} {
				got := messages(t, s, d, w.conv.ID, 0, 10)
				if len(got) != 3 || got[1].Seq != 2 || string(got[1].Event) != `{"kind":"x"}` || got[1].Ciphertext != nil {
					t.Fatalf("Messages(%s) = %+v, want m1, the event (no ciphertext), m3", d, got)
				}
				if got[0].Event != nil || got[2].Event != nil {
					t.Fatalf("Messages(%s): a message has an event: %+v", d, got)
				}
			}
			// The acting device is a recipient of its own event.
			if got := messages(t, s, w.a1.ID, w.conv.ID, 0, 10); len(got) != 1 || got[0].Seq != 2 {
				t.Fatalf("Messages(a1) = %+v, want only the event", got)
			}
		}},

		{"An added member is a member from the event's seq on and reads nothing from before", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			appendMessage(t, s, w.perDevice("m1"))
			add := memberEvent(w.conv.ID, w.alice.ID, w.a1.ID, `{"kind":"member_added"}`,
				&switchboard.MemberChange{Op: switchboard.MemberAdd, UserID: w.carol.ID}, w.a1.ID, w.a2.ID, w.b1.ID, w.c1.ID)
			if got := appendMessage(t, s, add); got.Seq != 2 {
				t.Fatalf("event seq = %d, want 2", got.Seq)
			}
			if c := members(t, s, w.conv.ID); !slices.Contains(c.Members, w.carol.ID) || slices.Contains(c.Admins, w.carol.ID) {
				t.Fatalf("members = %q, admins = %q: want carol a member, not an admin", c.Members, c.Admins)
			}
			if m := membership(t, s, w.conv.ID, w.carol.ID); m.JoinedSeq != 2 || m.LeftSeq != 0 || m.Admin {
				t.Fatalf("Membership(carol) = %+v, want joined at 2", m)
			}
			heads, err := s.Heads(ctx, w.carol.ID)
			if err != nil || heads[w.conv.ID] != 2 {
				t.Fatalf("Heads(carol) = %v, %v; want conv at 2", heads, err)
			}
			if got := messages(t, s, w.c1.ID, w.conv.ID, 0, 10); len(got) != 1 || got[0].Seq != 2 {
				t.Fatalf("Messages(c1) = %+v, want only the event that added carol", got)
			}
		}},

		{"A removed member is a former member up to the event's seq, whose devices get that event and nothing after", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			appendMessage(t, s, w.perDevice("m1"))
			rm := memberEvent(w.conv.ID, w.alice.ID, w.a1.ID, `{"kind":"member_removed"}`,
				&switchboard.MemberChange{Op: switchboard.MemberRemove, UserID: w.bob.ID}, w.a1.ID, w.a2.ID, w.b1.ID)
			appendMessage(t, s, rm)
			m3 := w.perDevice("m3")
			delete(m3.Ciphertexts, w.b1.ID)
			appendMessage(t, s, m3)
			if c := members(t, s, w.conv.ID); slices.Contains(c.Members, w.bob.ID) {
				t.Fatalf("members = %q, bob still in", c.Members)
			}
			if m := membership(t, s, w.conv.ID, w.bob.ID); m.LeftSeq != 2 {
				t.Fatalf("Membership(bob) = %+v, want left at 2", m)
			}
			heads, err := s.Heads(ctx, w.bob.ID)
			if err != nil || heads[w.conv.ID] != 2 {
				t.Fatalf("Heads(bob) = %v, %v; want conv at 2, his removal, not the head 3", heads, err)
			}
			list, err := s.Conversations(ctx, w.bob.ID, "", 10)
			if err != nil || len(list) != 0 {
				t.Fatalf("Conversations(bob) = %+v, %v; want none", list, err)
			}
			if got := messages(t, s, w.b1.ID, w.conv.ID, 0, 10); len(got) != 2 || got[1].Seq != 2 || got[1].Event == nil {
				t.Fatalf("Messages(b1) = %+v, want m1 and his removal", got)
			}
		}},

		{"A former member added again is a member again from the new event", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			all := []string{w.a1.ID, w.a2.ID, w.b1.ID}
			appendMessage(t, s, memberEvent(w.conv.ID, w.bob.ID, w.b1.ID, `{"kind":"member_left"}`,
				&switchboard.MemberChange{Op: switchboard.MemberRemove, UserID: w.bob.ID}, all...))
			appendMessage(t, s, memberEvent(w.conv.ID, w.alice.ID, w.a1.ID, `{"kind":"member_added"}`,
				&switchboard.MemberChange{Op: switchboard.MemberAdd, UserID: w.bob.ID}, all...))
			if m := membership(t, s, w.conv.ID, w.bob.ID); m.LeftSeq != 0 || m.JoinedSeq != 2 {
				t.Fatalf("Membership(bob) = %+v, want a member joined at 2", m)
			}
			heads, err := s.Heads(ctx, w.bob.ID)
			if err != nil || len(heads) != 1 || heads[w.conv.ID] != 2 {
				t.Fatalf("Heads(bob) = %v, %v; want conv once, at 2", heads, err)
			}
		}},

		{"A role change makes a member an admin and back", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			all := []string{w.a1.ID, w.a2.ID, w.b1.ID}
			appendMessage(t, s, memberEvent(w.conv.ID, w.alice.ID, w.a1.ID, `{"kind":"role_changed"}`,
				&switchboard.MemberChange{Op: switchboard.MemberSetAdmin, UserID: w.bob.ID, Admin: true}, all...))
			if c := members(t, s, w.conv.ID); !slices.Contains(c.Admins, w.bob.ID) {
				t.Fatalf("admins = %q, want bob", c.Admins)
			}
			appendMessage(t, s, memberEvent(w.conv.ID, w.alice.ID, w.a1.ID, `{"kind":"role_changed"}`,
				&switchboard.MemberChange{Op: switchboard.MemberSetAdmin, UserID: w.bob.ID}, all...))
			if m := membership(t, s, w.conv.ID, w.bob.ID); m.Admin {
				t.Fatalf("Membership(bob) = %+v, want no admin", m)
			}
		}},

		{"Changes committed in one batch apply in seq order", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			all := []string{w.a1.ID, w.a2.ID, w.b1.ID}
			done := make(chan error, 3)
			for _, c := range []*switchboard.MemberChange{{Op: switchboard.MemberAdd, UserID: w.carol.ID},
				{Op: switchboard.MemberRemove, UserID: w.carol.ID}, {Op: switchboard.MemberAdd, UserID: w.carol.ID}} {
				s.AppendMessageAsync(memberEvent(w.conv.ID, w.alice.ID, w.a1.ID, `{}`, c, all...),
					func(_ *switchboard.Message, _ bool, err error) { done <- err })
			}
			for range 3 {
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			}
			if m := membership(t, s, w.conv.ID, w.carol.ID); m.LeftSeq != 0 || m.JoinedSeq != 3 {
				t.Fatalf("Membership(carol) = %+v, want joined again at 3", m)
			}
		}},
	}
}
