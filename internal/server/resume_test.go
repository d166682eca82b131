package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/internal/server"
)

// outageBus is an in-process bus that can go down as Redis does: while
// down, conversation messages and control events published are lost;
// back, it calls the subscribers' resumed callbacks, as the Redis bus does
// once it has subscribed again.
type outageBus struct {
	*inmem.Bus
	mu      sync.Mutex
	down    bool
	drop    int // conversation messages to lose while up, as a publish Redis never took
	resumed []func()
}

func (b *outageBus) Publish(ctx context.Context, topic string, data []byte) error {
	b.mu.Lock()
	lost := b.down && (strings.HasPrefix(topic, chat.TopicPrefix) || strings.HasPrefix(topic, chat.ControlPrefix))
	if !b.down && b.drop > 0 && strings.HasPrefix(topic, chat.TopicPrefix) {
		b.drop--
		lost = true
	}
	b.mu.Unlock()
	if lost {
		return nil // as a publish Redis never took
	}
	return b.Bus.Publish(ctx, topic, data)
}

func (b *outageBus) Subscribe(prefix string, fn func(string, []byte), resumed func()) (func(), error) {
	if resumed != nil {
		b.mu.Lock()
		b.resumed = append(b.resumed, resumed)
		b.mu.Unlock()
	}
	return b.Bus.Subscribe(prefix, fn, nil)
}

func (b *outageBus) SubscribeTopics(fn func(string, []byte), resumed func()) (sb.Topics, error) {
	if resumed != nil {
		b.mu.Lock()
		b.resumed = append(b.resumed, resumed)
		b.mu.Unlock()
	}
	return b.Bus.SubscribeTopics(fn, nil)
}

func (b *outageBus) setDown(down bool) {
	b.mu.Lock()
	b.down = down
	fns := b.resumed
	b.mu.Unlock()
	if !down {
		for _, fn := range fns {
			go fn()
		}
	}
}

var _ sb.Bus = (*outageBus)(nil)

// TestBusResumed: messages stored while the bus was down reach the online
// devices when it is back, though nothing is sent after them (issue 16,
// defect 4), each once and in seq order, on the same sockets.
func TestBusResumed(t *testing.T) {
	cases := []struct {
		name string
		// during runs while the bus is down and returns the conversation
		// the lost messages went to.
		during func(t *testing.T, n *node, alice device, bob []device, conv string) string
	}{
		{"in a conversation the sockets have had messages of", func(t *testing.T, n *node, alice device, bob []device, conv string) string {
			return conv
		}},
		{"in a conversation created while the bus was down", func(t *testing.T, n *node, alice device, bob []device, conv string) string {
			return n.conversation(t, alice, "direct", bob[0].user)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, b := range backends {
				t.Run(b.name, func(t *testing.T) {
					bus := &outageBus{Bus: &inmem.Bus{}}
					n := startNodeOn(t, b.open(t), bus, slog.LevelInfo)
					alice := n.signup(t, "alice", "phone")[0]
					bob := n.signup(t, "bob", "phone", "laptop")
					conv := n.conversation(t, alice, "group", bob[0].user)
					readers := []*socket{n.dial(t, bob[0].token), n.dial(t, bob[1].token)}
					for _, r := range readers {
						r.expect(t, "synced")
					}
					s := n.dial(t, alice.token)
					s.expect(t, "synced")
					send := func(conv string, k int) {
						s.send(t, map[string]any{"type": "send", "id": fmt.Sprint("m", k), "conversation": conv, "ciphertext": []byte("x")})
						s.expect(t, "sent")
					}
					send(conv, 0)
					for _, r := range readers {
						r.expect(t, "message")
					}

					bus.setDown(true)
					lostIn := tc.during(t, n, alice, bob, conv)
					first := int64(1)
					if lostIn == conv {
						first = 2
					}
					for k := 1; k <= 3; k++ {
						send(lostIn, k)
					}
					bus.setDown(false)

					for i, r := range readers {
						for want := first; want < first+3; want++ {
							f := r.expect(t, "message")
							if f["conversation"] != lostIn || f["seq"] != float64(want) {
								t.Fatalf("reader %d: %v, want seq %d of %s (every seq once, in order)", i, f, want, lostIn)
							}
						}
						// Nothing else came before the answer to a ping.
						r.send(t, map[string]any{"type": "ping"})
						r.expect(t, "pong")
					}
				})
			}
		})
	}
}

// gatedStore holds up one device's sync in its backlog read (the read is
// done, its answer waits) until its user's heads have been read twice more
// after that sync read them: by a resume, and by the resume's next look at
// the sockets that were syncing. A resume that did not wait for them would
// leave the sync held up for good.
type gatedStore struct {
	sb.Store
	mu      sync.Mutex
	device  string // once
	user    string
	heads   int // Heads calls for user
	entered chan struct{}
	release chan struct{}
}

func (s *gatedStore) Messages(ctx context.Context, deviceID, convID string, after int64, limit int) ([]sb.Delivery, error) {
	ds, err := s.Store.Messages(ctx, deviceID, convID, after, limit)
	s.mu.Lock()
	gated := deviceID == s.device
	if gated {
		s.device = ""
	}
	s.mu.Unlock()
	if gated {
		close(s.entered)
		select {
		case <-s.release:
		case <-time.After(10 * time.Second): // no resume came back for it: the test fails, not hangs
		}
	}
	return ds, err
}

func (s *gatedStore) Heads(ctx context.Context, userID string) (map[string]int64, error) {
	s.mu.Lock()
	if userID == s.user {
		if s.heads++; s.heads == 3 {
			close(s.release)
		}
	}
	s.mu.Unlock()
	return s.Store.Heads(ctx, userID)
}

// TestBusResumedWhileSyncing: a socket whose sync read the store before
// messages were lost on the bus gets them once its sync is done: the resume
// waits for it.
func TestBusResumedWhileSyncing(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			bus := &outageBus{Bus: &inmem.Bus{}}
			store := &gatedStore{Store: b.open(t), entered: make(chan struct{}), release: make(chan struct{})}
			n := startNodeOn(t, store, bus, slog.LevelInfo)
			alice := n.signup(t, "alice", "phone")[0]
			bob := n.signup(t, "bob", "phone", "laptop")
			conv := n.conversation(t, alice, "group", bob[0].user)
			s := n.dial(t, alice.token)
			s.expect(t, "synced")
			send := func(k int) {
				s.send(t, map[string]any{"type": "send", "id": fmt.Sprint("m", k), "conversation": conv, "ciphertext": []byte("x")})
				s.expect(t, "sent")
			}
			send(0)

			bus.setDown(true)
			store.mu.Lock()
			store.device, store.user = bob[1].id, bob[1].user
			store.mu.Unlock()
			laptop := n.dial(t, bob[1].token)
			<-store.entered // its sync has read the store: seq 1
			for k := 1; k <= 3; k++ {
				send(k)
			}
			bus.setDown(false) // the resume finds the laptop syncing

			if f := laptop.expect(t, "message"); f["seq"] != 1.0 {
				t.Fatalf("backlog: %v, want seq 1", f)
			}
			laptop.expect(t, "synced")
			for want := 2.0; want <= 4; want++ {
				if f := laptop.expect(t, "message"); f["seq"] != want {
					t.Fatalf("%v, want seq %v (every seq once, in order)", f, want)
				}
			}
			laptop.send(t, map[string]any{"type": "ping"})
			laptop.expect(t, "pong")
		})
	}
}

// TestBusResumedRevoked: a device revoked while the bus was down (its
// control event lost) has its socket closed with 4001 when the bus is back.
func TestBusResumedRevoked(t *testing.T) {
	bus := &outageBus{Bus: &inmem.Bus{}}
	n := startNodeOn(t, backends[0].open(t), bus, slog.LevelInfo)
	bob := n.signup(t, "bob", "phone", "laptop")
	phone, laptop := n.dial(t, bob[0].token), n.dial(t, bob[1].token)
	phone.expect(t, "synced")
	laptop.expect(t, "synced")

	bus.setDown(true)
	if st, body := n.call(t, "DELETE", "/v1/devices/"+bob[1].id, bob[0].token, nil); st != 204 {
		t.Fatalf("DELETE: %d %v", st, body)
	}
	phone.send(t, map[string]any{"type": "ping"}) // the event would have come before the pong
	phone.expect(t, "pong")
	bus.setDown(false)

	_, err := laptop.readErr(5 * time.Second)
	if code := websocket.CloseStatus(err); code != 4001 {
		t.Fatalf("laptop socket: %v (code %d), want 4001", err, code)
	}
	phone.send(t, map[string]any{"type": "ping"})
	phone.expect(t, "pong") // the active device's socket stays
}

// headsGate lets the first Heads call through and holds up every later
// one until release is closed: a resume then reads one user's heads before
// a message is stored and the other users' after it.
type headsGate struct {
	sb.Store
	mu      sync.Mutex
	armed   bool
	calls   int
	waiting chan struct{} // closed when a held-up call has begun
	release chan struct{}
}

func (s *headsGate) Heads(ctx context.Context, userID string) (map[string]int64, error) {
	s.mu.Lock()
	gated := s.armed && s.calls > 0
	if s.armed {
		s.calls++
		if s.calls == 2 {
			close(s.waiting)
		}
	}
	s.mu.Unlock()
	if gated {
		select {
		case <-s.release:
		case <-time.After(20 * time.Second): // the test fails, not hangs
		}
	}
	return s.Store.Heads(ctx, userID)
}

// TestBusResumedWithHeadsReadApart: a resume reads its users' heads one
// after the other; messages stored between two reads are in the later
// user's heads and not in the earlier one's. Their publishes can cross or
// be lost (two nodes' connections, a publish resent after the outage): here
// seq 5's is lost and seq 6 comes live, where the sequencer holds it behind
// 5. The resume must then advance the conversation only to the lowest head
// it read (5), so 6 waits for 5 (read from the store when its grace ends).
// Advancing to the highest (7) released 6 to the sockets of the earlier
// user, who had 5 neither from the store nor live: a hole, seen once in
// the fault suite's Redis scenario.
func TestBusResumedWithHeadsReadApart(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			bus := &outageBus{Bus: &inmem.Bus{}}
			store := &headsGate{Store: b.open(t), waiting: make(chan struct{}), release: make(chan struct{})}
			n := startNodeOn(t, store, bus, slog.LevelInfo)
			alice := n.signup(t, "alice", "phone")[0]
			bob := n.signup(t, "bob", "phone")[0]
			carol := n.signup(t, "carol", "phone")[0]
			conv := n.conversation(t, alice, "group", bob.user, carol.user)
			// Alice sends over HTTP: she has no socket, so the resume reads
			// the heads of bob and carol only, one of them before seq 5.
			readers := []*socket{n.dial(t, bob.token), n.dial(t, carol.token)}
			for _, r := range readers {
				r.expect(t, "synced")
			}
			send := func(k int) {
				body := map[string]any{"id": fmt.Sprint("m", k), "ciphertext": []byte("x")}
				if st, got := n.call(t, "POST", "/v1/conversations/"+conv+"/messages", alice.token, body); st != 201 && st != 200 {
					t.Fatalf("send %d: %d %v", k, st, got)
				}
			}
			send(0)
			for _, r := range readers {
				r.expect(t, "message")
			}

			bus.setDown(true)
			for k := 1; k <= 3; k++ { // seqs 2-4, lost on the bus
				send(k)
			}
			store.mu.Lock()
			store.armed = true
			store.mu.Unlock()
			bus.setDown(false)
			<-store.waiting // one user's heads read (4), the other's held up
			bus.mu.Lock()
			bus.drop = 1
			bus.mu.Unlock()
			send(4) // seq 5: lost on the bus
			send(5) // seq 6: live, held behind 5
			deadline := time.Now().Add(20 * time.Second)
			for server.Held(n.srv, conv) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("seq 6 never reached the sequencer")
				}
				time.Sleep(5 * time.Millisecond)
			}
			close(store.release) // the other user's heads: 6

			for i, r := range readers {
				for want := 2.0; want <= 6; want++ {
					if f := r.expect(t, "message"); f["seq"] != want {
						t.Fatalf("socket %d: %v, want seq %v (every seq once, in order)", i, f, want)
					}
				}
			}
		})
	}
}
