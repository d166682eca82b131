package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard"
)

func retentionTests() []storeTest {
	return []storeTest{
		{"PurgeBefore deletes the messages of every conversation sent before t, and returns how many", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			other := createConversation(t, s, "conv-other", w.alice.ID, w.alice.ID, w.bob.ID)
			sendAt(t, s, w, w.conv.ID, "m1", at(10))
			sendAt(t, s, w, other.ID, "o1", at(11))
			sendAt(t, s, w, w.conv.ID, "m2", at(12)) // sent at t exactly: not before it
			sendAt(t, s, w, other.ID, "o2", at(13))

			if n := purgeBefore(t, s, at(12), 100); n != 2 {
				t.Fatalf("PurgeBefore(at(12)) = %d, want 2 (m1 and o1)", n)
			}
			for _, dev := range []string{w.a2.ID, w.b1.ID} {
				wantDeliveries(t, messages(t, s, dev, w.conv.ID, 0, 10), map[int64]string{2: "m2 for " + dev})
				wantDeliveries(t, messages(t, s, dev, other.ID, 0, 10), map[int64]string{2: "o2 for " + dev})
			}
			if n := purgeBefore(t, s, at(12), 100); n != 0 {
				t.Fatalf("PurgeBefore(at(12)) again = %d, want 0", n)
			}
		}},

		{"PurgeBefore deletes the ciphertext rows of the messages it deletes, and only those", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			for i := range 5 {
				sendAt(t, s, w, w.conv.ID, fmt.Sprint("m", i), at(10+i)) // a row for a2 and one for b1
			}
			if n := countRows(t, s, "message_ciphertexts"); n != 10 {
				t.Fatalf("message_ciphertexts holds %d rows after 5 sends, want 10", n)
			}
			if n := purgeBefore(t, s, at(13), 100); n != 3 {
				t.Fatalf("PurgeBefore(at(13)) = %d, want 3", n)
			}
			if n := countRows(t, s, "message_ciphertexts"); n != 4 {
				t.Errorf("message_ciphertexts holds %d rows after purging 3 of 5 messages, want 4", n)
			}
		}},

		{"PurgeBefore deletes at most limit messages, oldest first, and 0 once none is left", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			// Seq order is not time order: a sender's clock may lag.
			for i, sec := range []int{14, 10, 12, 11, 13} {
				sendAt(t, s, w, w.conv.ID, fmt.Sprintf("m%d", i+1), at(sec))
			}
			steps := []struct {
				want int
				left string // seqs b1 still receives
			}{
				{2, "[1 3 5]"}, // at(10) and at(11) go first
				{2, "[1]"},
				{1, "[]"},
				{0, "[]"},
			}
			for i, st := range steps {
				if n := purgeBefore(t, s, at(20), 2); n != st.want {
					t.Fatalf("call %d: PurgeBefore(limit 2) = %d, want %d", i+1, n, st.want)
				}
				if got := seqs(messages(t, s, w.b1.ID, w.conv.ID, 0, 10)); got != st.left {
					t.Fatalf("after call %d b1 receives seqs %s, want %s", i+1, got, st.left)
				}
			}
		}},

		{"after PurgeBefore head seq and cursors stay and the next append gets the next seq", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			for i := 1; i <= 3; i++ {
				appendMessage(t, s, w.perDevice(fmt.Sprintf("m%d", i)))
			}
			if err := s.Ack(ctx, w.b1.ID, w.conv.ID, 2); err != nil {
				t.Fatalf("Ack: %v", err)
			}
			if n := purgeBefore(t, s, at(11), 100); n != 3 {
				t.Fatalf("PurgeBefore = %d, want 3", n)
			}
			conv, err := s.Conversation(ctx, w.conv.ID)
			if err != nil || conv.HeadSeq != 3 {
				t.Fatalf("Conversation = %+v, %v; want head seq still 3", conv, err)
			}
			if got, err := s.Cursors(ctx, w.b1.ID); err != nil || got[w.conv.ID] != 2 {
				t.Fatalf("Cursors(b1) = %v, %v; want conv still at 2", got, err)
			}
			if got := appendMessage(t, s, w.perDevice("m4")); got.Seq != 4 {
				t.Fatalf("seq after the purge = %d, want 4", got.Seq)
			}
			wantDeliveries(t, messages(t, s, w.b1.ID, w.conv.ID, 0, 10), map[int64]string{4: "m4 for d-b1"})
		}},

		{"a purged message's client id sent again never gets an old seq back", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			appendMessage(t, s, w.perDevice("m1"))
			appendMessage(t, s, w.perDevice("m2"))
			purgeBefore(t, s, at(11), 100)
			// Idempotency is not promised after a purge; reusing seq 1 would
			// be a bug either way.
			got, dup, err := s.AppendMessage(ctx, w.perDevice("m1"))
			if err != nil {
				t.Fatalf("AppendMessage(m1 again): %v", err)
			}
			if !dup && got.Seq != 3 {
				t.Fatalf("m1 stored again with seq %d, want 3", got.Seq)
			}
		}},

		{"PurgeAcked deletes only the rows at or below each device's own cursor in that conversation", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			other := createConversation(t, s, "conv-other", w.alice.ID, w.alice.ID, w.bob.ID)
			for i := 1; i <= 3; i++ {
				appendMessage(t, s, w.perDevice(fmt.Sprintf("m%d", i)))
			}
			sendAt(t, s, w, other.ID, "o1", at(10))
			sendAt(t, s, w, other.ID, "o2", at(10))
			acks := []struct {
				device, conv string
				seq          int64
			}{
				{w.b1.ID, w.conv.ID, 2},
				{w.a2.ID, other.ID, 9},  // past the head: everything there
				{w.c1.ID, w.conv.ID, 3}, // not a recipient: nothing to delete
			}
			for _, a := range acks {
				if err := s.Ack(ctx, a.device, a.conv, a.seq); err != nil {
					t.Fatalf("Ack(%s, %s, %d): %v", a.device, a.conv, a.seq, err)
				}
			}
			// b1's m1 and m2, a2's o1 and o2; every message keeps a row.
			if n := purgeAcked(t, s, 100); n != 4 {
				t.Fatalf("PurgeAcked = %d, want 4", n)
			}
			backlog := []struct {
				device, conv, want string
			}{
				{w.b1.ID, w.conv.ID, "[3]"},
				{w.a2.ID, w.conv.ID, "[1 2 3]"},
				{w.a2.ID, other.ID, "[]"},
				{w.b1.ID, other.ID, "[1 2]"},
			}
			for _, b := range backlog {
				if got := seqs(messages(t, s, b.device, b.conv, 0, 10)); got != b.want {
					t.Errorf("%s receives seqs %s in %s, want %s", b.device, got, b.conv, b.want)
				}
			}
			if n := purgeAcked(t, s, 100); n != 0 {
				t.Fatalf("PurgeAcked again = %d, want 0", n)
			}
		}},

		{"PurgeAcked deletes a message with its last row and counts both", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			m1 := w.perDevice("m1")
			appendMessage(t, s, m1)
			ack(t, s, w.b1.ID, w.conv.ID, 1)
			if n := purgeAcked(t, s, 100); n != 1 {
				t.Fatalf("PurgeAcked after b1's ack = %d, want 1 (b1's row; a2 still needs m1)", n)
			}
			wantDeliveries(t, messages(t, s, w.a2.ID, w.conv.ID, 0, 10), map[int64]string{1: "m1 for d-a2"})
			wantDeliveries(t, messages(t, s, w.b1.ID, w.conv.ID, 0, 10), nil)

			ack(t, s, w.a2.ID, w.conv.ID, 1)
			if n := purgeAcked(t, s, 100); n != 2 {
				t.Fatalf("PurgeAcked after a2's ack = %d, want 2 (a2's row and the message)", n)
			}
			if n := purgeAcked(t, s, 100); n != 0 {
				t.Fatalf("PurgeAcked again = %d, want 0", n)
			}
			if got := appendMessage(t, s, w.perDevice("m2")); got.Seq != 2 {
				t.Fatalf("seq after the purge = %d, want 2", got.Seq)
			}
		}},

		{"PurgeAcked deletes at most limit rows a call, and looping until 0 purges all that is acked", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			for i := 1; i <= 5; i++ {
				appendMessage(t, s, w.perDevice(fmt.Sprintf("m%d", i)))
			}
			ack(t, s, w.a2.ID, w.conv.ID, 4)
			ack(t, s, w.b1.ID, w.conv.ID, 4)
			rows := func() int {
				return len(messages(t, s, w.a2.ID, w.conv.ID, 0, 10)) + len(messages(t, s, w.b1.ID, w.conv.ID, 0, 10))
			}
			const limit = 3
			eligible, total := 8, 0 // 2 devices x seqs 1 to 4, then the 4 messages
			for call := 1; ; call++ {
				before := rows()
				n := purgeAcked(t, s, limit)
				deleted := before - rows()
				if want := min(limit, eligible); deleted != want {
					t.Fatalf("call %d deleted %d rows, want %d", call, deleted, want)
				}
				if emptied := n - deleted; emptied < 0 || emptied > deleted {
					t.Fatalf("call %d returned %d for %d rows: not rows plus the messages they emptied", call, n, deleted)
				}
				eligible -= deleted
				total += n
				if n == 0 {
					break
				}
			}
			if total != 12 {
				t.Errorf("the calls deleted %d in total, want 12 (8 rows, 4 messages)", total)
			}
			for _, dev := range []string{w.a2.ID, w.b1.ID} {
				wantDeliveries(t, messages(t, s, dev, w.conv.ID, 0, 10), map[int64]string{5: "m5 for " + dev})
			}
		}},

		{"a limit of 0 purges nothing", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			appendMessage(t, s, w.perDevice("m1"))
			ack(t, s, w.b1.ID, w.conv.ID, 1)
			if n := purgeBefore(t, s, at(20), 0); n != 0 {
				t.Errorf("PurgeBefore(limit 0) = %d, want 0", n)
			}
			if n := purgeAcked(t, s, 0); n != 0 {
				t.Errorf("PurgeAcked(limit 0) = %d, want 0", n)
			}
			wantDeliveries(t, messages(t, s, w.b1.ID, w.conv.ID, 0, 10), map[int64]string{1: "m1 for d-b1"})
		}},

		{"purgers running at once each loop until 0 and together delete everything exactly once", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			const msgs = 60
			for i := range msgs {
				sendAt(t, s, w, w.conv.ID, fmt.Sprintf("m%d", i), at(i))
			}
			ack(t, s, w.a2.ID, w.conv.ID, msgs)
			ack(t, s, w.b1.ID, w.conv.ID, msgs/2)
			acked := func() (int, error) { return s.PurgeAcked(ctx, 7) }
			// a2's 60 rows and b1's first 30, which empty those 30 messages.
			if n := sum(runPurgers(t, acked, acked, acked, acked)); n != 60+30+30 {
				t.Errorf("PurgeAcked loops deleted %d, want 120 (90 rows, 30 messages)", n)
			}
			if got := seqs(messages(t, s, w.b1.ID, w.conv.ID, 0, 100)); got != span(31, msgs) {
				t.Errorf("after PurgeAcked b1 receives seqs %s, want 31 to %d", got, msgs)
			}
			old := func() (int, error) { return s.PurgeBefore(ctx, at(msgs), 7) }
			if n := sum(runPurgers(t, old, old, old, old)); n != 30 {
				t.Errorf("PurgeBefore loops deleted %d messages, want 30", n)
			}
			wantDeliveries(t, messages(t, s, w.b1.ID, w.conv.ID, 0, 100), nil)
		}},

		{"PurgeBefore and PurgeAcked running at once neither fail nor stop before their work is done", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			const msgs = 120
			for i := range msgs {
				sendAt(t, s, w, w.conv.ID, fmt.Sprintf("m%d", i), at(i))
			}
			ack(t, s, w.a2.ID, w.conv.ID, msgs)
			ack(t, s, w.b1.ID, w.conv.ID, msgs/2)
			// They race for the same messages and rows, from opposite ends.
			acked := func() (int, error) { return s.PurgeAcked(ctx, 5) }
			old := func() (int, error) { return s.PurgeBefore(ctx, at(90), 5) }
			runPurgers(t, acked, old, acked, old)
			// Left: seqs 91 to 120 (sent at at(90) and after), for b1 only.
			if got := seqs(messages(t, s, w.b1.ID, w.conv.ID, 0, 200)); got != span(91, msgs) {
				t.Errorf("b1 receives seqs %s, want 91 to %d", got, msgs)
			}
			wantDeliveries(t, messages(t, s, w.a2.ID, w.conv.ID, 0, 200), nil)
		}},
	}
}

// runPurgers runs each purge in its own goroutine, calling it until it
// returns 0, and returns what each deleted in total. An error fails t.
func runPurgers(t *testing.T, purges ...func() (int, error)) []int {
	t.Helper()
	totals := make([]int, len(purges))
	errs := make([]error, len(purges))
	var wg sync.WaitGroup
	for i, purge := range purges {
		wg.Go(func() {
			for {
				n, err := purge()
				if err != nil || n == 0 {
					errs[i] = err
					return
				}
				totals[i] += n
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("purger %d: %v", i, err)
		}
	}
	return totals
}

func sum(ns []int) int {
	total := 0
	for _, n := range ns {
		total += n
	}
	return total
}

// sendAt appends, from a1 to a2 and b1 in convID, a message sent at sentAt
// with ciphertexts "<clientID> for <device>".
func sendAt(t *testing.T, s switchboard.Store, w *world, convID, clientID string, sentAt time.Time) *switchboard.Message {
	t.Helper()
	m := w.perDevice(clientID)
	m.ConversationID, m.SentAt = convID, sentAt
	return appendMessage(t, s, m)
}

func ack(t *testing.T, s switchboard.Store, deviceID, convID string, seq int64) {
	t.Helper()
	if err := s.Ack(ctx, deviceID, convID, seq); err != nil {
		t.Fatalf("Ack(%s, %s, %d): %v", deviceID, convID, seq, err)
	}
}

func purgeBefore(t *testing.T, s switchboard.Store, before time.Time, limit int) int {
	t.Helper()
	n, err := s.PurgeBefore(ctx, before, limit)
	if err != nil {
		t.Fatalf("PurgeBefore(%v, %d): %v", before, limit, err)
	}
	return n
}

func purgeAcked(t *testing.T, s switchboard.Store, limit int) int {
	t.Helper()
	n, err := s.PurgeAcked(ctx, limit)
	if err != nil {
		t.Fatalf("PurgeAcked(%d): %v", limit, err)
	}
	return n
}

// seqs formats the seqs of ds as "[1 2 3]".
func seqs(ds []switchboard.Delivery) string {
	s := make([]int64, len(ds))
	for i, d := range ds {
		s[i] = d.Seq
	}
	return fmt.Sprint(s)
}

// span formats the seqs from to to as seqs does.
func span(from, to int64) string {
	var s []int64
	for seq := from; seq <= to; seq++ {
		s = append(s, seq)
	}
	return fmt.Sprint(s)
}
