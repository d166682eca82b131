package storetest

import (
	"fmt"
	"testing"

	"github.com/switchboard-chat/switchboard"
)

func cursorTests() []storeTest {
	return []storeTest{
		{"Ack moves the cursor forward and never back", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			steps := []struct {
				ack, want int64
			}{
				{3, 3},
				{1, 3}, // a late ack of an older seq
				{3, 3},
				{7, 7},
				{0, 7},
			}
			for _, st := range steps {
				if err := s.Ack(ctx, w.b1.ID, w.conv.ID, st.ack); err != nil {
					t.Fatalf("Ack(%d): %v", st.ack, err)
				}
				got, err := s.Cursors(ctx, w.b1.ID)
				if err != nil {
					t.Fatalf("Cursors: %v", err)
				}
				if got[w.conv.ID] != st.want {
					t.Fatalf("after Ack(%d) the cursor is %d, want %d", st.ack, got[w.conv.ID], st.want)
				}
			}
		}},

		{"Cursors returns the acked seq of each conversation of that device only", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			other := createConversation(t, s, "conv-other", w.alice.ID, w.alice.ID, w.bob.ID)
			createConversation(t, s, "conv-unacked", w.alice.ID, w.alice.ID, w.bob.ID)
			acks := []struct {
				device, conv string
				seq          int64
			}{
				{w.b1.ID, w.conv.ID, 4},
				{w.b1.ID, other.ID, 2},
				{w.a2.ID, w.conv.ID, 9},
			}
			for _, a := range acks {
				if err := s.Ack(ctx, a.device, a.conv, a.seq); err != nil {
					t.Fatalf("Ack(%s, %s, %d): %v", a.device, a.conv, a.seq, err)
				}
			}
			got, err := s.Cursors(ctx, w.b1.ID)
			if err != nil {
				t.Fatalf("Cursors: %v", err)
			}
			want := map[string]int64{w.conv.ID: 4, other.ID: 2}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("Cursors(b1) = %v, want %v", got, want)
			}
		}},

		{"Cursors of a device that never acked is empty", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			got, err := s.Cursors(ctx, w.c1.ID)
			if err != nil || len(got) != 0 {
				t.Fatalf("Cursors(c1) = %v, %v; want empty", got, err)
			}
		}},
	}
}
