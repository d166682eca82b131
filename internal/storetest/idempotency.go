package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/switchboard-chat/switchboard"
)

func idempotencyTests() []storeTest {
	return []storeTest{
		{"a client id sent again by the same device returns the first message as a duplicate and stores nothing", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			first := appendMessage(t, s, w.perDevice("m1"))
			appendMessage(t, s, w.perDevice("m2"))

			again := w.perDevice("m1")
			again.SentAt = at(99)
			again.Ciphertexts[w.b1.ID] = []byte("a retry with other bytes")
			got, dup, err := s.AppendMessage(ctx, again)
			if err != nil || !dup {
				t.Fatalf("AppendMessage(retry) = dup %v, err %v; want dup true, nil", dup, err)
			}
			if got.Seq != first.Seq || got.ConversationID != w.conv.ID || got.SenderDeviceID != w.a1.ID || got.ClientID != "m1" {
				t.Errorf("duplicate = %+v, want the first message, seq %d", got, first.Seq)
			}
			wantTime(t, "duplicate.SentAt", got.SentAt, first.SentAt)

			conv, err := s.Conversation(ctx, w.conv.ID)
			if err != nil || conv.HeadSeq != 2 {
				t.Fatalf("Conversation = %+v, %v; want head seq still 2", conv, err)
			}
			wantDeliveries(t, messages(t, s, w.b1.ID, w.conv.ID, 0, 10), map[int64]string{1: "m1 for d-b1", 2: "m2 for d-b1"})
		}},

		{"the same client id from another device is a new message", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			appendMessage(t, s, w.perDevice("m1"))
			fromBob := w.perDevice("m1")
			fromBob.SenderUserID, fromBob.SenderDeviceID = w.bob.ID, w.b1.ID
			fromBob.Ciphertexts = map[string][]byte{w.a1.ID: []byte("bob's m1")}
			got := appendMessage(t, s, fromBob)
			if got.Seq != 2 {
				t.Fatalf("seq = %d, want 2", got.Seq)
			}
			wantDeliveries(t, messages(t, s, w.a1.ID, w.conv.ID, 0, 10), map[int64]string{2: "bob's m1"})
		}},

		{"concurrent sends of one client id store one message", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			const senders = 8
			type result struct {
				seq int64
				dup bool
				err error
			}
			results := make([]result, senders)
			var wg sync.WaitGroup
			for i := range senders {
				wg.Go(func() {
					m, dup, err := s.AppendMessage(ctx, w.perDevice("same"))
					results[i] = result{dup: dup, err: err}
					if err == nil {
						results[i].seq = m.Seq
					}
				})
			}
			wg.Wait()
			fresh := 0
			for _, r := range results {
				if r.err != nil || r.seq != 1 {
					t.Fatalf("results = %+v, want every send to report seq 1", results)
				}
				if !r.dup {
					fresh++
				}
			}
			if fresh != 1 {
				t.Fatalf("%d sends stored a message, want exactly 1: %s", fresh, fmt.Sprint(results))
			}
			wantDeliveries(t, messages(t, s, w.b1.ID, w.conv.ID, 0, 10), map[int64]string{1: "same for d-b1"})
		}},
	}
}
