package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard-chat/switchboard/internal/groupcommit"
)

// TestLiveDeliveryInSeqOrder: sends from many devices into one conversation
// at once are committed together (group commit) and their calls return in
// any order; every connected member device must still receive each message
// exactly once and in seq order, as docs/protocol.md promises (a client
// that drops seqs at or below the last it saw loses nothing).
func TestLiveDeliveryInSeqOrder(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			n := startNode(t, b.open(t))
			const senders, each = 8, 25
			var devs []device
			for i := range senders {
				devs = append(devs, n.signup(t, fmt.Sprintf("user%d", i), "phone")[0])
			}
			reader := n.signup(t, "reader", "phone")[0]
			var members []string
			for _, d := range devs[1:] {
				members = append(members, d.user)
			}
			conv := n.conversation(t, devs[0], "group", append(members, reader.user)...)

			rs := n.dial(t, reader.token)
			rs.expect(t, "synced")
			socks := make([]*socket, senders)
			for i, d := range devs {
				socks[i] = n.dial(t, d.token)
				socks[i].expect(t, "synced")
			}

			var wg sync.WaitGroup
			errs := make(chan error, senders)
			for i, s := range socks {
				wg.Go(func() {
					for k := range each {
						frame, _ := json.Marshal(map[string]any{"type": "send", "id": fmt.Sprintf("m%d-%d", i, k),
							"conversation": conv, "ciphertext": []byte("x")})
						if err := s.c.Write(context.Background(), websocket.MessageText, frame); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}

			var last float64
			for got := 0; got < senders*each; {
				f, err := rs.readErr(10 * time.Second)
				if err != nil {
					t.Fatalf("after %d of %d messages: %v", got, senders*each, err)
				}
				if f["type"] != "message" {
					continue
				}
				seq := f["seq"].(float64)
				if seq <= last {
					t.Fatalf("message %d: seq %v after %v, want increasing seqs", got, seq, last)
				}
				if seq != last+1 {
					t.Fatalf("message %d: seq %v after %v: seqs in between never arrived", got, seq, last)
				}
				last = seq
				got++
			}
		})
	}
}

// TestOneSocketsSendsShareACommit: a device that sends faster than one
// commit at a time (frames written back to back, answers not awaited) has
// its sends committed together instead of one commit each, and still gets
// one answer per send, with seqs in send order in each conversation.
func TestOneSocketsSendsShareACommit(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			n := startNode(t, b.open(t))
			alice := n.signup(t, "alice", "phone")[0]
			bob := n.signup(t, "bob", "phone")[0]
			convs := []string{n.conversation(t, alice, "direct", bob.user), n.conversation(t, alice, "group", bob.user)}
			stats := n.store.(interface{ AppendStats() groupcommit.Stats })
			before := stats.AppendStats()

			s := n.dial(t, alice.token)
			s.expect(t, "synced")
			const sends = 60 // within the default burst of the per-device send limit
			for k := range sends {
				frame, _ := json.Marshal(map[string]any{"type": "send", "id": fmt.Sprint("m", k),
					"conversation": convs[k%2], "ciphertext": []byte("x")})
				if err := s.c.Write(context.Background(), websocket.MessageText, frame); err != nil {
					t.Fatal(err)
				}
			}
			seqs := make(map[string]float64) // by id
			for len(seqs) < sends {
				f := s.read(t)
				if f["type"] != "sent" {
					t.Fatalf("answer %v, want sent", f)
				}
				id := f["id"].(string)
				if _, dup := seqs[id]; dup {
					t.Fatalf("a second answer to %s", id)
				}
				seqs[id] = f["seq"].(float64)
			}
			for k := range sends {
				if want := float64(k/2 + 1); seqs[fmt.Sprint("m", k)] != want {
					t.Errorf("m%d (conversation %d): seq %v, want %v (send order)", k, k%2, seqs[fmt.Sprint("m", k)], want)
				}
			}
			after := stats.AppendStats()
			if jobs, batches := after.Jobs-before.Jobs, after.Batches-before.Batches; jobs != sends || batches >= sends {
				t.Errorf("%d sends in %d commits, want %d sends in fewer commits than sends", jobs, batches, sends)
			}
		})
	}
}
