package storetest

import (
	"fmt"
	"sync"
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

		{"concurrent acks (committed together) each move their cursor to the highest seq; one to an unknown device fails alone", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			other := createConversation(t, s, "conv-acks", w.alice.ID, w.alice.ID, w.bob.ID)
			devices := []string{w.a1.ID, w.a2.ID, w.b1.ID}
			convs := []string{w.conv.ID, other.ID}
			type ack struct {
				device, conv string
				seq          int64
			}
			var acks []ack
			for seq := int64(1); seq <= 40; seq++ {
				for _, d := range devices {
					for _, c := range convs {
						acks = append(acks, ack{d, c, seq})
					}
				}
			}
			acks = append(acks, ack{"d-unknown", w.conv.ID, 99})
			var wg sync.WaitGroup
			errs := make([]error, len(acks))
			start := make(chan struct{})
			// Every ack of one key at once, in reverse too: a batch holds
			// several seqs of one cursor, lower ones after higher ones.
			for i := range acks {
				a := acks[len(acks)-1-i]
				wg.Go(func() {
					<-start
					errs[len(acks)-1-i] = s.Ack(ctx, a.device, a.conv, a.seq)
				})
			}
			close(start)
			wg.Wait()
			for i, err := range errs {
				if a := acks[i]; (err != nil) != (a.device == "d-unknown") {
					t.Errorf("Ack(%s, %s, %d) = %v", a.device, a.conv, a.seq, err)
				}
			}
			for _, d := range devices {
				got, err := s.Cursors(ctx, d)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range convs {
					if got[c] != 40 {
						t.Errorf("cursor of %s in %s = %d, want 40", d, c, got[c])
					}
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
