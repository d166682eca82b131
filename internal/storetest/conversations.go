package storetest

import (
	"reflect"
	"slices"
	"testing"
	"time"

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

			got, err := s.Conversations(ctx, w.alice.ID, "", 100)
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

		{"Conversations pages by id: limit bounds a page and after continues past it", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s) // "conv": alice and bob
			for _, id := range []string{"c-1", "c-3", "c-2", "c-4"} {
				createConversation(t, s, id, w.carol.ID, w.carol.ID, w.alice.ID)
			}
			createConversation(t, s, "c-25", w.bob.ID, w.bob.ID, w.carol.ID) // not alice's
			var pages [][]string
			after := ""
			for range 5 {
				got, err := s.Conversations(ctx, w.alice.ID, after, 2)
				if err != nil {
					t.Fatalf("Conversations(after %q): %v", after, err)
				}
				if len(got) == 0 {
					break
				}
				var ids []string
				for _, c := range got {
					ids = append(ids, c.ID)
				}
				pages = append(pages, ids)
				after = ids[len(ids)-1]
			}
			want := [][]string{{"c-1", "c-2"}, {"c-3", "c-4"}, {"conv"}}
			if !reflect.DeepEqual(pages, want) {
				t.Fatalf("pages = %v, want %v", pages, want)
			}
		}},

		{"Contacts lists the users sharing a conversation once each, and stops at the row limit", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s) // "conv": alice and bob
			createConversation(t, s, "a-conv", w.carol.ID, w.carol.ID, w.alice.ID)
			createConversation(t, s, "b-conv", w.carol.ID, w.carol.ID, w.alice.ID, w.bob.ID)
			got, err := s.Contacts(ctx, w.alice.ID, 100)
			if err != nil {
				t.Fatalf("Contacts: %v", err)
			}
			slices.Sort(got)
			if want := []string{w.alice.ID, w.bob.ID, w.carol.ID}; !slices.Equal(got, want) {
				t.Fatalf("Contacts(alice) = %v, want %v", got, want)
			}
			got, err = s.Contacts(ctx, w.alice.ID, 2)
			if err != nil || len(got) == 0 || len(got) > 2 {
				t.Fatalf("Contacts(alice, 2) = %v, %v; want one or two users", got, err)
			}
			if got, err := s.Contacts(ctx, "usr-nobody", 100); err != nil || len(got) != 0 {
				t.Fatalf("Contacts(unknown user) = %v, %v; want none", got, err)
			}
		}},

		{"Blockers names who of a list blocks a user, until they unblock", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			at := time.Now()
			for _, b := range [][2]string{{w.alice.ID, w.carol.ID}, {w.bob.ID, w.carol.ID}, {w.alice.ID, w.bob.ID}} {
				if err := s.Block(ctx, b[0], b[1], at); err != nil {
					t.Fatalf("Block(%s, %s): %v", b[0], b[1], err)
				}
			}
			if err := s.Block(ctx, w.alice.ID, w.carol.ID, at); err != nil {
				t.Fatalf("a second Block of the same user: %v", err)
			}
			got, err := s.Blockers(ctx, w.carol.ID, []string{w.alice.ID, w.bob.ID})
			slices.Sort(got)
			if want := []string{w.alice.ID, w.bob.ID}; err != nil || !slices.Equal(got, want) {
				t.Fatalf("Blockers(carol) = %v, %v; want %v", got, err, want)
			}
			if got, err := s.Blockers(ctx, w.carol.ID, []string{w.bob.ID}); err != nil || !slices.Equal(got, []string{w.bob.ID}) {
				t.Fatalf("Blockers(carol among bob) = %v, %v; want bob", got, err)
			}
			if got, err := s.Blockers(ctx, w.alice.ID, []string{w.bob.ID, w.carol.ID}); err != nil || len(got) != 0 {
				t.Fatalf("Blockers(alice) = %v, %v; want none: blocks go one way", got, err)
			}
			if err := s.Unblock(ctx, w.bob.ID, w.carol.ID); err != nil {
				t.Fatalf("Unblock: %v", err)
			}
			if err := s.Unblock(ctx, w.bob.ID, w.carol.ID); err != nil {
				t.Fatalf("Unblock of no block: %v", err)
			}
			if got, err := s.Blockers(ctx, w.carol.ID, []string{w.alice.ID, w.bob.ID}); err != nil || !slices.Equal(got, []string{w.alice.ID}) {
				t.Fatalf("Blockers(carol) after bob unblocked = %v, %v; want alice", got, err)
			}
		}},

		{"Conversations of a user in none returns an empty list", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			got, err := s.Conversations(ctx, w.carol.ID, "", 100)
			if err != nil || len(got) != 0 {
				t.Fatalf("Conversations(carol) = %+v, %v; want none", got, err)
			}
		}},
	}
}
