package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/switchboard-chat/switchboard"
)

// A shared ciphertext reaches exactly the devices that are the keys of its
// message's Ciphertexts, however the store keeps that set (the stores keep
// one row per recipient set, not per message). These tests change the set
// between messages and check that every device gets exactly its own.

// shared is a message from a1 in conv of the ciphertext "<clientID>,
// shared" to the given devices.
func (w *world) shared(clientID string, to ...string) *switchboard.Message {
	m := &switchboard.Message{
		ConversationID: w.conv.ID, SenderUserID: w.alice.ID, SenderDeviceID: w.a1.ID, ClientID: clientID,
		SentAt: at(10), Shared: []byte(clientID + ", shared"), Ciphertexts: make(map[string][]byte),
	}
	for _, d := range to {
		m.Ciphertexts[d] = nil
	}
	return m
}

// rowCounter is what a store's test may add to the store it gives the
// suite (in an export_test.go) for the tests that check what a send
// writes: the number of rows of a table of its schema.
type rowCounter interface {
	CountRows(ctx context.Context, table string) (int, error)
}

// countRows returns the rows of table, skipping t when the store cannot count.
func countRows(t *testing.T, s switchboard.Store, table string) int {
	t.Helper()
	c, ok := s.(rowCounter)
	if !ok {
		t.Skip("the store counts no rows (CountRows)")
	}
	n, err := c.CountRows(ctx, table)
	if err != nil {
		t.Fatalf("CountRows(%s): %v", table, err)
	}
	return n
}

// wantReceived checks what every device of devices receives in convID:
// exactly the messages whose ciphertexts name it, each as CiphertextFor
// gives it, in seq order.
func wantReceived(t *testing.T, s switchboard.Store, convID string, devices []string, sent []*switchboard.Message) {
	t.Helper()
	for _, d := range devices {
		want := make(map[int64]string)
		for _, m := range sent {
			if ct, ok := m.CiphertextFor(d); ok && m.ConversationID == convID {
				want[m.Seq] = string(ct)
			}
		}
		got := messages(t, s, d, convID, 0, 1000)
		if len(got) != len(want) {
			t.Fatalf("%s receives seqs %s in %s, want %d messages %v", d, seqs(got), convID, len(want), want)
		}
		wantDeliveries(t, got, want)
	}
}

func sharedTests() []storeTest {
	return []storeTest{
		{"shared messages to an unchanged set reach exactly its devices, whoever sends", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			all := []string{w.a1.ID, w.a2.ID, w.b1.ID, w.c1.ID}
			var sent []*switchboard.Message
			for i := 1; i <= 3; i++ {
				sent = append(sent, appendMessage(t, s, w.shared(fmt.Sprintf("m%d", i), w.a2.ID, w.b1.ID)))
			}
			// bob writes to alice's two devices: the same group.
			fromBob := w.shared("b", w.a1.ID, w.a2.ID)
			fromBob.SenderUserID, fromBob.SenderDeviceID = w.bob.ID, w.b1.ID
			sent = append(sent, appendMessage(t, s, fromBob))
			sent = append(sent, appendMessage(t, s, w.shared("m4", w.a2.ID, w.b1.ID)))
			wantReceived(t, s, w.conv.ID, all, sent)
		}},

		{"a device added to the set later receives the shared messages from then on only", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			b2 := createDevice(t, s, w.bob.ID, "d-b2", at(3))
			all := []string{w.a1.ID, w.a2.ID, w.b1.ID, b2.ID}
			sent := []*switchboard.Message{
				appendMessage(t, s, w.shared("m1", w.a2.ID, w.b1.ID)),
				appendMessage(t, s, w.shared("m2", w.a2.ID, w.b1.ID)),
				appendMessage(t, s, w.shared("m3", w.a2.ID, w.b1.ID, b2.ID)),
				appendMessage(t, s, w.shared("m4", w.a2.ID, w.b1.ID, b2.ID)),
			}
			wantReceived(t, s, w.conv.ID, all, sent)
			if got := seqs(messages(t, s, b2.ID, w.conv.ID, 0, 10)); got != "[3 4]" {
				t.Errorf("b2 receives seqs %s, want [3 4]", got)
			}
		}},

		{"a device dropped from the set receives the earlier shared messages only, until it is back", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			b2 := createDevice(t, s, w.bob.ID, "d-b2", at(3))
			all := []string{w.a1.ID, w.a2.ID, w.b1.ID, b2.ID}
			sent := []*switchboard.Message{
				appendMessage(t, s, w.shared("m1", w.a2.ID, w.b1.ID, b2.ID)),
				// b2 is simply not among the keys.
				appendMessage(t, s, w.shared("m2", w.a2.ID, w.b1.ID)),
			}
			// b1 is revoked: the next sends leave it out too.
			if err := s.RevokeDevice(ctx, w.bob.ID, w.b1.ID, at(5)); err != nil {
				t.Fatalf("RevokeDevice: %v", err)
			}
			sent = append(sent, appendMessage(t, s, w.shared("m3", w.a2.ID)))
			// b2 is back.
			sent = append(sent, appendMessage(t, s, w.shared("m4", w.a2.ID, b2.ID)))
			wantReceived(t, s, w.conv.ID, all, sent)
			for dev, want := range map[string]string{w.b1.ID: "[1 2]", b2.ID: "[1 4]", w.a2.ID: "[1 2 3 4]"} {
				if got := seqs(messages(t, s, dev, w.conv.ID, 0, 10)); got != want {
					t.Errorf("%s receives seqs %s, want %s", dev, got, want)
				}
			}
		}},

		{"a shared message whose sender is among its recipients reaches the sender too", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			all := []string{w.a1.ID, w.a2.ID, w.b1.ID}
			sent := []*switchboard.Message{
				appendMessage(t, s, w.shared("m1", w.a2.ID, w.b1.ID)),
				appendMessage(t, s, w.shared("m2", w.a1.ID, w.a2.ID, w.b1.ID)),
				appendMessage(t, s, w.shared("m3", w.a2.ID, w.b1.ID)),
			}
			wantReceived(t, s, w.conv.ID, all, sent)
			if got := seqs(messages(t, s, w.a1.ID, w.conv.ID, 0, 10)); got != "[2]" {
				t.Errorf("the sender a1 receives seqs %s, want [2]", got)
			}
		}},

		{"interleaved per-device and shared messages come back in seq order with their ciphertexts, a page at a time", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			b2 := createDevice(t, s, w.bob.ID, "d-b2", at(3))
			all := []string{w.a1.ID, w.a2.ID, w.b1.ID, b2.ID, w.c1.ID}
			sets := [][]string{{w.a2.ID, w.b1.ID}, {w.a2.ID, w.b1.ID, b2.ID}, {w.b1.ID}, {w.a2.ID, b2.ID}}
			var sent []*switchboard.Message
			for i := range 24 {
				clientID := fmt.Sprintf("m%d", i+1)
				var m *switchboard.Message
				switch i % 3 {
				case 0:
					m = w.perDevice(clientID)
				default: // the set changes every few messages
					m = w.shared(clientID, sets[(i/5)%len(sets)]...)
				}
				sent = append(sent, appendMessage(t, s, m))
			}
			wantReceived(t, s, w.conv.ID, all, sent)
			for _, d := range all {
				full := messages(t, s, d, w.conv.ID, 0, 1000)
				for _, limit := range []int{1, 2, 5} {
					var paged []switchboard.Delivery
					for after := int64(0); ; {
						page := messages(t, s, d, w.conv.ID, after, limit)
						if len(page) > limit {
							t.Fatalf("%s: Messages(after %d, limit %d) returned %d", d, after, limit, len(page))
						}
						if len(page) == 0 {
							break
						}
						paged = append(paged, page...)
						after = page[len(page)-1].Seq
					}
					if seqs(paged) != seqs(full) {
						t.Errorf("%s paged by %d receives seqs %s, want %s", d, limit, seqs(paged), seqs(full))
					}
				}
				// A page can start inside an epoch.
				for after := int64(0); after <= 24; after++ {
					var want []switchboard.Delivery
					for _, dl := range full {
						if dl.Seq > after && len(want) < 3 {
							want = append(want, dl)
						}
					}
					if got := messages(t, s, d, w.conv.ID, after, 3); seqs(got) != seqs(want) {
						t.Errorf("%s after %d limit 3 receives seqs %s, want %s", d, after, seqs(got), seqs(want))
					}
				}
			}
		}},

		{"concurrent sends changing the set within one conversation each reach exactly their devices", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			b2 := createDevice(t, s, w.bob.ID, "d-b2", at(3))
			other := createConversation(t, s, "conv-other", w.alice.ID, w.alice.ID, w.bob.ID)
			all := []string{w.a1.ID, w.a2.ID, w.b1.ID, b2.ID, w.c1.ID}
			sets := [][]string{{w.a2.ID, w.b1.ID}, {w.a2.ID, w.b1.ID, b2.ID}, {b2.ID}, {w.a2.ID, w.b1.ID}}
			var msgs []*switchboard.Message
			for i := range 96 {
				clientID := fmt.Sprintf("m%d", i)
				var m *switchboard.Message
				switch {
				case i%7 == 3:
					m = w.perDevice(clientID)
				case i%11 == 5: // a duplicate of a message of the same run
					m = w.shared(fmt.Sprintf("m%d", i-5), sets[0]...)
				case i%13 == 6: // refused: a set with a device that does not exist
					m = w.shared(clientID, w.a2.ID, "d-nope")
				default:
					m = w.shared(clientID, sets[(i/3)%len(sets)]...)
				}
				if i%4 == 1 {
					m.ConversationID = other.ID
				}
				msgs = append(msgs, m)
			}
			refused := func(m *switchboard.Message) bool { _, ok := m.Ciphertexts["d-nope"]; return ok }
			results, err := sendAll(s, msgs, func(i int, r sendResult) error {
				if (r.err != nil) != refused(msgs[i]) {
					return fmt.Errorf("send %d: %v", i, r.err)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// What was stored: each client id once, with the set it was first stored with.
			var sent []*switchboard.Message
			seqs := make(map[string][]int64)
			for i, r := range results {
				if r.dup || r.err != nil {
					continue
				}
				m := msgs[i]
				m.Seq = r.m.Seq
				sent = append(sent, m)
				seqs[m.ConversationID] = append(seqs[m.ConversationID], m.Seq)
			}
			wantGapless(t, s, seqs)
			for _, convID := range []string{w.conv.ID, other.ID} {
				wantReceived(t, s, convID, all, sent)
			}
		}},

		{"a duplicate of a shared message returns the stored one and changes no set", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			first := appendMessage(t, s, w.shared("m1", w.a2.ID, w.b1.ID))
			epochs := countRows(t, s, "shared_epochs")
			again := w.shared("m1", w.a2.ID) // a retry, to another set
			got, dup, err := s.AppendMessage(ctx, again)
			if err != nil || !dup {
				t.Fatalf("AppendMessage(retry) = dup %v, err %v; want dup true, nil", dup, err)
			}
			if got.Seq != first.Seq || string(got.Shared) != "m1, shared" {
				t.Errorf("duplicate = %+v, want seq %d and the stored shared ciphertext", got, first.Seq)
			}
			if n := countRows(t, s, "shared_epochs"); n != epochs {
				t.Errorf("the duplicate changed the epochs from %d to %d rows", epochs, n)
			}
			m2 := appendMessage(t, s, w.shared("m2", w.a2.ID, w.b1.ID))
			if n := countRows(t, s, "shared_epochs"); n != epochs {
				t.Errorf("a send to the first set after the duplicate made %d epochs, want %d", n, epochs)
			}
			wantReceived(t, s, w.conv.ID, []string{w.a1.ID, w.a2.ID, w.b1.ID}, []*switchboard.Message{first, m2})
		}},

		{"a shared message to 2,000 devices writes no row per device when the set is unchanged", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			var devices []string
			for i := range 2000 {
				devices = append(devices, createDevice(t, s, w.bob.ID, fmt.Sprintf("d-b%04d", i), at(3)).ID)
			}
			first := appendMessage(t, s, w.shared("m1", devices...))
			tables := []string{"messages", "message_ciphertexts", "shared_epochs", "shared_recipients"}
			before := make(map[string]int)
			for _, table := range tables {
				before[table] = countRows(t, s, table)
			}
			second := appendMessage(t, s, w.shared("m2", devices...))
			for _, table := range tables {
				want := before[table]
				if table == "messages" {
					want++
				}
				if n := countRows(t, s, table); n != want {
					t.Errorf("%s: %d rows after the second message, want %d", table, n, want)
				}
			}
			sent := []*switchboard.Message{first, second}
			wantReceived(t, s, w.conv.ID, []string{devices[0], devices[1999], w.a1.ID, w.b1.ID}, sent)
		}},

		{"PurgeAcked deletes a shared message once every live device of its set has acked it", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			b2 := createDevice(t, s, w.bob.ID, "d-b2", at(3))
			appendMessage(t, s, w.shared("m1", w.a2.ID, w.b1.ID, b2.ID))
			appendMessage(t, s, w.shared("m2", w.a2.ID, w.b1.ID, b2.ID))
			m3 := appendMessage(t, s, w.shared("m3", w.a2.ID, w.b1.ID)) // another set
			// The sender a1 never acks: it is no recipient.
			ack(t, s, w.a2.ID, w.conv.ID, 3)
			ack(t, s, w.b1.ID, w.conv.ID, 2)
			if n := purgeAcked(t, s, 100); n != 0 {
				t.Fatalf("PurgeAcked = %d, want 0 (b2 has acked nothing, b1 not m3)", n)
			}
			ack(t, s, b2.ID, w.conv.ID, 1)
			if n := purgeAcked(t, s, 100); n != 1 {
				t.Fatalf("PurgeAcked after b2 acked m1 = %d, want 1", n)
			}
			if err := s.RevokeDevice(ctx, w.bob.ID, b2.ID, at(6)); err != nil {
				t.Fatalf("RevokeDevice: %v", err)
			}
			if n := purgeAcked(t, s, 100); n != 1 {
				t.Fatalf("PurgeAcked after b2 is revoked = %d, want 1 (m2)", n)
			}
			wantReceived(t, s, w.conv.ID, []string{w.a2.ID, w.b1.ID}, []*switchboard.Message{m3})
			ack(t, s, w.b1.ID, w.conv.ID, 3)
			if n := purgeAcked(t, s, 100); n != 1 {
				t.Fatalf("PurgeAcked after b1 acked m3 = %d, want 1", n)
			}
			wantReceived(t, s, w.conv.ID, []string{w.a1.ID, w.a2.ID, w.b1.ID}, nil)
			// Only the current set is left, and a send to it adds none.
			if n := countRows(t, s, "shared_epochs"); n != 1 {
				t.Errorf("%d epochs left, want 1 (the current one)", n)
			}
			m4 := appendMessage(t, s, w.shared("m4", w.a2.ID, w.b1.ID))
			if n := countRows(t, s, "shared_epochs"); n != 1 {
				t.Errorf("%d epochs after a send to the current set, want 1", n)
			}
			wantReceived(t, s, w.conv.ID, []string{w.a1.ID, w.a2.ID, w.b1.ID}, []*switchboard.Message{m4})
		}},

		{"PurgeAcked waits for the sender's ack of a shared message it is a recipient of", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			appendMessage(t, s, w.shared("m1", w.a1.ID, w.a2.ID, w.b1.ID))
			ack(t, s, w.a2.ID, w.conv.ID, 1)
			ack(t, s, w.b1.ID, w.conv.ID, 1)
			purgeAcked(t, s, 100)
			wantDeliveries(t, messages(t, s, w.a1.ID, w.conv.ID, 0, 10), map[int64]string{1: "m1, shared"})
			ack(t, s, w.a1.ID, w.conv.ID, 1)
			for purgeAcked(t, s, 100) > 0 {
			}
			if n := countRows(t, s, "messages"); n != 0 {
				t.Errorf("%d messages left after every recipient acked, want 0", n)
			}
		}},

		{"PurgeAcked deletes at most limit shared messages a call, and looping purges them all", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			for i := range 10 {
				to := []string{w.a2.ID, w.b1.ID}
				if i >= 5 {
					to = to[1:]
				}
				appendMessage(t, s, w.shared(fmt.Sprintf("m%d", i+1), to...))
			}
			ack(t, s, w.a2.ID, w.conv.ID, 10)
			ack(t, s, w.b1.ID, w.conv.ID, 10)
			var calls []int
			for {
				n := purgeAcked(t, s, 3)
				if n > 3 {
					t.Fatalf("PurgeAcked(3) = %d", n)
				}
				if n == 0 {
					break
				}
				calls = append(calls, n)
			}
			if fmt.Sprint(calls) != "[3 3 3 1]" {
				t.Errorf("PurgeAcked(3) calls deleted %v, want [3 3 3 1]", calls)
			}
			if n := countRows(t, s, "shared_epochs"); n != 1 {
				t.Errorf("%d epochs left, want 1 (the current one)", n)
			}
		}},

		{"PurgeBefore leaves no epoch that no message needs but keeps the current one", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			b2 := createDevice(t, s, w.bob.ID, "d-b2", at(3))
			setA, setB := []string{w.a2.ID, w.b1.ID}, []string{w.a2.ID, b2.ID}
			send := func(clientID string, sec int, to []string) *switchboard.Message {
				m := w.shared(clientID, to...)
				m.SentAt = at(sec)
				return appendMessage(t, s, m)
			}
			send("m1", 10, setA)
			send("m2", 11, setB)
			m3 := send("m3", 12, setB)
			m4 := send("m4", 13, setA)
			if n := countRows(t, s, "shared_epochs"); n != 3 {
				t.Fatalf("%d epochs, want 3", n)
			}
			if n := purgeBefore(t, s, at(12), 100); n != 2 {
				t.Fatalf("PurgeBefore(at(12)) = %d, want 2", n)
			}
			if n := countRows(t, s, "shared_epochs"); n != 2 {
				t.Errorf("%d epochs after m1 and m2 went, want 2 (m3's, and m4's, the current)", n)
			}
			wantReceived(t, s, w.conv.ID, []string{w.a2.ID, w.b1.ID, b2.ID}, []*switchboard.Message{m3, m4})
			if n := purgeBefore(t, s, at(20), 100); n != 2 {
				t.Fatalf("PurgeBefore(at(20)) = %d, want 2", n)
			}
			if n := countRows(t, s, "shared_epochs"); n != 1 {
				t.Errorf("%d epochs once every message went, want 1 (the current one)", n)
			}
			// The current set is kept: a send to it adds no epoch and reaches it.
			send("m5", 21, setA)
			if n := countRows(t, s, "shared_epochs"); n != 1 {
				t.Errorf("%d epochs after a send to the current set, want 1", n)
			}
			send("m6", 22, setB)
			purgeBefore(t, s, at(22), 100) // m5
			if n := countRows(t, s, "shared_epochs"); n != 1 {
				t.Errorf("%d epochs after m5 went, want 1 (m6's)", n)
			}
			// A new set supersedes a current epoch left empty; the next
			// purge in the conversation drops it.
			purgeBefore(t, s, at(23), 100) // m6
			send("m7", 24, setA)
			m8 := send("m8", 25, setA)
			if n := countRows(t, s, "shared_epochs"); n != 2 {
				t.Errorf("%d epochs, want 2 (m6's, left empty, and the current one)", n)
			}
			purgeBefore(t, s, at(25), 100) // m7
			if n := countRows(t, s, "shared_epochs"); n != 1 {
				t.Errorf("%d epochs after m7 went, want 1 (m8's)", n)
			}
			wantReceived(t, s, w.conv.ID, []string{w.a1.ID, w.a2.ID, w.b1.ID, b2.ID}, []*switchboard.Message{m8})
		}},
	}
}
