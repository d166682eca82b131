package storetest

import (
	"testing"

	"github.com/switchboard-chat/switchboard"
)

func conversationTests() []storeTest {
	return []storeTest{
		{"CreateConversation then Conversation returns it with sorted members and head seq 0", func(t *testing.T, s switchboard.Store) {
			createUser(t, s, "u-c", "c")
			createUser(t, s, "u-a", "a")
			createUser(t, s, "u-b", "b")
			c := createConversation(t, s, "conv", "u-c", "u-c", "u-a", "u-b")
			got, err := s.Conversation(ctx, "conv")
			if err != nil {
				t.Fatalf("Conversation: %v", err)
			}
			want := *c
			want.Members = []string{"u-a", "u-b", "u-c"}
			wantConversation(t, got, &want, 0)
		}},

		{"Conversation of an unknown id returns ErrNotFound", func(t *testing.T, s switchboard.Store) {
			newWorld(t, s)
			_, err := s.Conversation(ctx, "conv-nope")
			wantNotFound(t, "Conversation(conv-nope)", err)
		}},

		{"Conversations lists the user's conversations by id with members and head seq", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s) // "conv": alice and bob
			ac := createConversation(t, s, "a-conv", w.carol.ID, w.carol.ID, w.alice.ID)
			createConversation(t, s, "z-conv", w.bob.ID, w.bob.ID, w.carol.ID)
			appendMessage(t, s, w.perDevice("m1"))
			appendMessage(t, s, w.perDevice("m2"))

			got, err := s.Conversations(ctx, w.alice.ID)
			if err != nil {
				t.Fatalf("Conversations: %v", err)
			}
			if len(got) != 2 {
				t.Fatalf("Conversations(alice) = %+v, want a-conv and conv", got)
			}
			wantAC := *ac
			wantAC.Members = []string{w.alice.ID, w.carol.ID}
			wantConversation(t, &got[0], &wantAC, 0)
			wantConv := *w.conv
			wantConv.Members = []string{w.alice.ID, w.bob.ID}
			wantConversation(t, &got[1], &wantConv, 2)
		}},

		{"Heads gives the head seq of each of the user's conversations, and only theirs", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s) // "conv": alice and bob
			ac := createConversation(t, s, "a-conv", w.carol.ID, w.carol.ID, w.alice.ID)
			zc := createConversation(t, s, "z-conv", w.bob.ID, w.bob.ID, w.carol.ID)
			appendMessage(t, s, w.perDevice("m1"))
			appendMessage(t, s, w.perDevice("m2"))
			got, err := s.Heads(ctx, w.alice.ID)
			if err != nil {
				t.Fatalf("Heads: %v", err)
			}
			if len(got) != 2 || got[w.conv.ID] != 2 || got[ac.ID] != 0 {
				t.Fatalf("Heads(alice) = %v, want %s: 2 and %s: 0", got, w.conv.ID, ac.ID)
			}
			if _, ok := got[zc.ID]; ok {
				t.Fatalf("Heads(alice) has %s, which alice is not in", zc.ID)
			}
			if got, err := s.Heads(ctx, "usr-nobody"); err != nil || len(got) != 0 {
				t.Fatalf("Heads(unknown user) = %v, %v; want none", got, err)
			}
		}},

		{"Conversations of a user in none returns an empty list", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			got, err := s.Conversations(ctx, w.carol.ID)
			if err != nil || len(got) != 0 {
				t.Fatalf("Conversations(carol) = %+v, %v; want none", got, err)
			}
		}},
	}
}
