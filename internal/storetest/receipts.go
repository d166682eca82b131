package storetest

import (
	"slices"
	"testing"

	"github.com/switchboard-chat/switchboard"
)

func receiptTests() []storeTest {
	return []storeTest{
		{"MarkRead moves a user's read mark forward only and says when it moved", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			for _, st := range []struct {
				seq, want int64
				moved     bool
			}{{3, 3, true}, {1, 3, false}, {3, 3, false}, {7, 7, true}} {
				read, moved, err := s.MarkRead(ctx, w.bob.ID, w.conv.ID, st.seq)
				if err != nil {
					t.Fatalf("MarkRead(%d): %v", st.seq, err)
				}
				if read != st.want || moved != st.moved {
					t.Fatalf("MarkRead(%d) = %d, %v; want %d, %v", st.seq, read, moved, st.want, st.moved)
				}
			}
		}},
		{"Receipts lists every member: delivered is the highest ack of their devices, read their mark, 0 when none", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			for _, a := range []struct {
				dev string
				seq int64
			}{{w.a1.ID, 2}, {w.a2.ID, 5}, {w.b1.ID, 1}} {
				if err := s.Ack(ctx, a.dev, w.conv.ID, a.seq); err != nil {
					t.Fatal(err)
				}
			}
			if _, _, err := s.MarkRead(ctx, w.alice.ID, w.conv.ID, 4); err != nil {
				t.Fatal(err)
			}
			got, err := s.Receipts(ctx, w.conv.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := []switchboard.Receipt{{UserID: w.alice.ID, Delivered: 5, Read: 4}, {UserID: w.bob.ID, Delivered: 1}}
			if !slices.Equal(got, want) {
				t.Fatalf("Receipts = %+v, want %+v", got, want)
			}
		}},
		{"read receipts are on by default; SetReadReceipts turns them off and on; an unknown user is not found", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			users := []string{w.alice.ID, w.bob.ID, w.carol.ID}
			off := func() []string {
				t.Helper()
				got, err := s.ReadReceiptsOff(ctx, users)
				if err != nil {
					t.Fatal(err)
				}
				slices.Sort(got)
				return got
			}
			if got := off(); len(got) != 0 {
				t.Fatalf("off by default: %v", got)
			}
			for _, u := range []string{w.bob.ID, w.carol.ID} {
				if err := s.SetReadReceipts(ctx, u, false); err != nil {
					t.Fatal(err)
				}
			}
			if got := off(); !slices.Equal(got, []string{w.bob.ID, w.carol.ID}) {
				t.Fatalf("off after turning bob and carol off: %v", got)
			}
			if err := s.SetReadReceipts(ctx, w.bob.ID, true); err != nil {
				t.Fatal(err)
			}
			if got := off(); !slices.Equal(got, []string{w.carol.ID}) {
				t.Fatalf("off after turning bob on again: %v", got)
			}
			wantNotFound(t, "SetReadReceipts of an unknown user", s.SetReadReceipts(ctx, "u-nobody", false))
		}},
	}
}
