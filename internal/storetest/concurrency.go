package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/switchboard-chat/switchboard"
)

func concurrencyTests() []storeTest {
	return []storeTest{
		{"8 senders appending 50 messages each get seqs 1 to 400 with no gap and no duplicate", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			const senders, each = 8, 50
			seqs := make(chan int64, senders*each)
			errs := make(chan error, senders)
			var wg sync.WaitGroup
			for g := range senders {
				wg.Go(func() {
					for i := range each {
						m, dup, err := s.AppendMessage(ctx, w.perDevice(fmt.Sprintf("g%d-%d", g, i)))
						if err != nil || dup {
							errs <- fmt.Errorf("sender %d message %d: dup %v, err %v", g, i, dup, err)
							return
						}
						seqs <- m.Seq
					}
				})
			}
			wg.Wait()
			close(seqs)
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			seen := make(map[int64]bool)
			for seq := range seqs {
				if seen[seq] || seq < 1 || seq > senders*each {
					t.Fatalf("seq %d assigned twice or out of 1..%d", seq, senders*each)
				}
				seen[seq] = true
			}
			if len(seen) != senders*each {
				t.Fatalf("%d distinct seqs, want %d", len(seen), senders*each)
			}
			conv, err := s.Conversation(ctx, w.conv.ID)
			if err != nil || conv.HeadSeq != senders*each {
				t.Fatalf("Conversation = %+v, %v; want head seq %d", conv, err, senders*each)
			}
			got := messages(t, s, w.b1.ID, w.conv.ID, 0, 1000)
			for i, d := range got {
				if d.Seq != int64(i+1) {
					t.Fatalf("delivery %d has seq %d", i, d.Seq)
				}
			}
			if len(got) != senders*each {
				t.Fatalf("b1 received %d messages, want %d", len(got), senders*each)
			}
		}},
	}
}
