package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
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
