package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/switchboard-chat/switchboard"
)

// The stores commit concurrent appends together (group commit). These
// tests start many sends at once so that batches form, and check that the
// contract of AppendMessage holds for each call as if it were alone.

// sendResult is what one AppendMessage call returned.
type sendResult struct {
	m   *switchboard.Message
	dup bool
	err error
}

// sendAll appends every message, each on its own goroutine, all released
// at once, and returns the results in the order of msgs. Each call, once
// it returns, must find its message committed: check runs then, on the
// calling goroutine, with the result.
func sendAll(s switchboard.Store, msgs []*switchboard.Message, check func(i int, r sendResult) error) ([]sendResult, error) {
	results := make([]sendResult, len(msgs))
	errs := make([]error, len(msgs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Go(func() {
			<-start
			stored, dup, err := s.AppendMessage(ctx, m)
			results[i] = sendResult{stored, dup, err}
			if check != nil {
				errs[i] = check(i, results[i])
			}
		})
	}
	close(start)
	wg.Wait()
	return results, errors.Join(errs...)
}

// committed checks that a device reads the message at seq: a call returns
// only after the commit that holds its message.
func committed(s switchboard.Store, deviceID, convID string, seq int64) error {
	got, err := s.Messages(ctx, deviceID, convID, seq-1, 1)
	if err != nil {
		return err
	}
	if len(got) != 1 || got[0].Seq != seq {
		return fmt.Errorf("%s seq %d not readable by %s when AppendMessage returned: %v", convID, seq, deviceID, got)
	}
	return nil
}

// wantGapless fails unless the seqs of each conversation are exactly 1..n
// and its head seq is n.
func wantGapless(t *testing.T, s switchboard.Store, seqs map[string][]int64) {
	t.Helper()
	for convID, got := range seqs {
		seen := make(map[int64]bool)
		for _, seq := range got {
			if seen[seq] || seq < 1 || seq > int64(len(got)) {
				t.Fatalf("%s: seq %d assigned twice or outside 1..%d (seqs %v)", convID, seq, len(got), got)
			}
			seen[seq] = true
		}
		conv, err := s.Conversation(ctx, convID)
		if err != nil {
			t.Fatalf("Conversation(%s): %v", convID, err)
		}
		if conv.HeadSeq != int64(len(got)) {
			t.Errorf("%s head seq = %d, want %d", convID, conv.HeadSeq, len(got))
		}
	}
}

func batchingTests() []storeTest {
	return []storeTest{
		{"AppendMessageAsync returns at once, answers each message once after its commit, with seqs in call order", func(t *testing.T, s switchboard.Store) {
			a := s
			w := newWorld(t, s)
			other := createConversation(t, s, "conv-async", w.alice.ID, w.alice.ID, w.bob.ID).ID
			convs := []string{w.conv.ID, other}
			const sends = 100
			results := make(chan error, sends+1)
			seqs := make([]int64, sends)
			for k := range sends {
				m := w.perDevice(fmt.Sprint("async", k))
				m.ConversationID = convs[k%2]
				if k == 50 {
					m.ClientID = "async0" // a retry of the first: its stored result
				}
				a.AppendMessageAsync(m, func(stored *switchboard.Message, dup bool, err error) {
					switch {
					case err != nil:
					case dup != (k == 50):
						err = fmt.Errorf("send %d: duplicate = %v", k, dup)
					case stored.ConversationID != convs[k%2] && k != 50:
						err = fmt.Errorf("send %d answered for conversation %s", k, stored.ConversationID)
					default:
						seqs[k] = stored.Seq
						// A read from the committer's goroutine, which done
						// should not do; here it shows the commit came first.
						err = committed(s, w.b1.ID, stored.ConversationID, stored.Seq)
					}
					results <- err
				})
			}
			for range sends {
				if err := <-results; err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-results:
				t.Fatalf("a second answer: %v", err)
			default:
			}
			next := map[string]int64{}
			for k := range sends {
				if k == 50 {
					if seqs[k] != seqs[0] {
						t.Errorf("the retry got seq %d, want the first send's %d", seqs[k], seqs[0])
					}
					continue
				}
				c := convs[k%2]
				next[c]++
				if seqs[k] != next[c] {
					t.Errorf("send %d got seq %d in its conversation, want %d (call order)", k, seqs[k], next[c])
				}
			}
		}},
		{"64 concurrent senders in 4 conversations get each conversation's seqs without gap, committed on return", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			convs := []string{w.conv.ID}
			for i := 1; i < 4; i++ {
				convs = append(convs, createConversation(t, s, fmt.Sprintf("conv-%d", i), w.alice.ID, w.alice.ID, w.bob.ID).ID)
			}
			const each = 5
			var msgs []*switchboard.Message
			for g := range 64 * each {
				m := w.perDevice(fmt.Sprintf("g%d", g))
				m.ConversationID = convs[g%len(convs)]
				msgs = append(msgs, m)
			}
			results, err := sendAll(s, msgs, func(i int, r sendResult) error {
				if r.err != nil || r.dup {
					return fmt.Errorf("send %d: dup %v, err %v", i, r.dup, r.err)
				}
				return committed(s, w.b1.ID, r.m.ConversationID, r.m.Seq)
			})
			if err != nil {
				t.Fatal(err)
			}
			seqs := make(map[string][]int64)
			for i, r := range results {
				if r.m.ConversationID != msgs[i].ConversationID || r.m.ClientID != msgs[i].ClientID {
					t.Fatalf("send %d got the result of another message: %+v", i, r.m)
				}
				seqs[r.m.ConversationID] = append(seqs[r.m.ConversationID], r.m.Seq)
			}
			wantGapless(t, s, seqs)
			for _, convID := range convs {
				got := messages(t, s, w.a2.ID, convID, 0, 1000)
				if len(got) != len(seqs[convID]) {
					t.Errorf("a2 reads %d messages in %s, want %d", len(got), convID, len(seqs[convID]))
				}
				for _, d := range got {
					i := indexOf(results, convID, d.Seq)
					if i < 0 {
						t.Fatalf("a2 reads %s seq %d, which no send was answered with", convID, d.Seq)
					}
					if want := msgs[i].Ciphertexts[w.a2.ID]; string(d.Ciphertext) != string(want) {
						t.Errorf("%s seq %d = %q, want %q", convID, d.Seq, d.Ciphertext, want)
					}
				}
			}
		}},

		{"the append observer sees each new message once, in seq order per conversation, before its call returns", func(t *testing.T, s switchboard.Store) {
			o := s
			var (
				mu       sync.Mutex
				observed = make(map[string][]int64)
				byID     = make(map[string]*switchboard.Message)
			)
			o.OnAppended(func(m *switchboard.Message) {
				mu.Lock()
				defer mu.Unlock()
				observed[m.ConversationID] = append(observed[m.ConversationID], m.Seq)
				byID[m.ClientID] = m
			})
			w := newWorld(t, s)
			convs := []string{w.conv.ID}
			for i := 1; i < 4; i++ {
				convs = append(convs, createConversation(t, s, fmt.Sprintf("conv-%d", i), w.alice.ID, w.alice.ID, w.bob.ID).ID)
			}
			// 256 sends in 4 conversations, every fourth a duplicate of
			// the one before it: duplicates are never observed.
			var msgs []*switchboard.Message
			for g := range 256 {
				id := fmt.Sprintf("g%d", g-g%4/3)
				m := w.perDevice(id)
				m.ConversationID = convs[(g-g%4/3)%len(convs)]
				msgs = append(msgs, m)
			}
			results, err := sendAll(s, msgs, func(i int, r sendResult) error {
				if r.err != nil {
					return fmt.Errorf("send %d: %v", i, r.err)
				}
				mu.Lock()
				defer mu.Unlock()
				if got := byID[msgs[i].ClientID]; got == nil || got.Seq != r.m.Seq || got.ConversationID != r.m.ConversationID {
					return fmt.Errorf("send %d returned %s seq %d; the observer had %+v", i, r.m.ConversationID, r.m.Seq, got)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			stored := make(map[string]int)
			for _, r := range results {
				if !r.dup {
					stored[r.m.ConversationID]++
				}
			}
			for _, convID := range convs {
				got := observed[convID]
				if len(got) != stored[convID] {
					t.Errorf("%s: observed %d messages, %d were stored", convID, len(got), stored[convID])
				}
				for i, seq := range got {
					if seq != int64(i+1) {
						t.Fatalf("%s: observed seqs %v, want 1..%d in order", convID, got, stored[convID])
					}
				}
			}
			for id, m := range byID {
				if want := id + " for " + w.b1.ID; string(m.Ciphertexts[w.b1.ID]) != want || m.SentAt.IsZero() {
					t.Errorf("observed %s with b1's ciphertext %q and sent at %v, want %q and a time", id, m.Ciphertexts[w.b1.ID], m.SentAt, want)
				}
			}
		}},

		{"client ids sent several times at once are each stored once, every copy answered with its seq", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			other := createConversation(t, s, "conv-other", w.alice.ID, w.alice.ID, w.bob.ID)
			// 16 client ids, each sent 1 to 4 times, interleaved with each
			// other, so that one batch holds a message and its duplicates,
			// and duplicates of a message committed in an earlier batch.
			var msgs []*switchboard.Message
			for n := range 4 {
				for id := range 16 {
					if n > id%4 {
						continue
					}
					m := w.perDevice(fmt.Sprintf("id%d", id))
					if id%2 == 1 {
						m.ConversationID = other.ID
					}
					msgs = append(msgs, m)
				}
			}
			results, err := sendAll(s, msgs, func(i int, r sendResult) error {
				if r.err != nil {
					return fmt.Errorf("send %d: %v", i, r.err)
				}
				return committed(s, w.b1.ID, r.m.ConversationID, r.m.Seq)
			})
			if err != nil {
				t.Fatal(err)
			}
			stored := make(map[string]int64)
			fresh := make(map[string]int)
			for i, r := range results {
				if r.m.ClientID != msgs[i].ClientID || r.m.ConversationID != msgs[i].ConversationID || r.m.SenderDeviceID != w.a1.ID {
					t.Fatalf("send %d (%s) answered with %+v", i, msgs[i].ClientID, r.m)
				}
				if seq, ok := stored[r.m.ClientID]; ok && seq != r.m.Seq {
					t.Fatalf("%s answered with seqs %d and %d", r.m.ClientID, seq, r.m.Seq)
				}
				stored[r.m.ClientID] = r.m.Seq
				if !r.dup {
					fresh[r.m.ClientID]++
				}
			}
			seqs := make(map[string][]int64)
			for id := range 16 {
				clientID := fmt.Sprintf("id%d", id)
				if fresh[clientID] != 1 {
					t.Errorf("%s stored %d times, want once", clientID, fresh[clientID])
				}
				convID := w.conv.ID
				if id%2 == 1 {
					convID = other.ID
				}
				seqs[convID] = append(seqs[convID], stored[clientID])
			}
			wantGapless(t, s, seqs)
			for convID, want := range seqs {
				if got := messages(t, s, w.b1.ID, convID, 0, 100); len(got) != len(want) {
					t.Errorf("b1 reads %d messages in %s, want %d", len(got), convID, len(want))
				}
			}
		}},

		{"a send to an unknown conversation among concurrent ones fails alone with ErrNotFound", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			var msgs []*switchboard.Message
			for i := range 48 {
				m := w.perDevice(fmt.Sprintf("m%d", i))
				if i%8 == 3 {
					m.ConversationID = "conv-nope"
				}
				msgs = append(msgs, m)
			}
			// The same client id again, to an unknown conversation: the
			// first was never stored, so this is no duplicate either.
			again := w.perDevice("m3")
			again.ConversationID = "conv-nope"
			msgs = append(msgs, again)
			results, err := sendAll(s, msgs, nil)
			if err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			for i, r := range results {
				if msgs[i].ConversationID == "conv-nope" {
					wantNotFound(t, fmt.Sprintf("send %d to conv-nope", i), r.err)
					continue
				}
				if r.err != nil || r.dup {
					t.Fatalf("send %d: dup %v, err %v", i, r.dup, r.err)
				}
				seqs = append(seqs, r.m.Seq)
			}
			wantGapless(t, s, map[string][]int64{w.conv.ID: seqs})
		}},

		{"a send the store refuses for what it holds fails alone; the others of its batch are stored", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			var msgs []*switchboard.Message
			for i := range 48 {
				m := w.perDevice(fmt.Sprintf("m%d", i))
				switch i % 12 {
				case 5: // a recipient device that does not exist
					m.Ciphertexts["d-nope"] = []byte("lost")
				case 11: // a sender device that does not exist
					m.SenderDeviceID = "d-nope"
				}
				msgs = append(msgs, m)
			}
			results, err := sendAll(s, msgs, func(i int, r sendResult) error {
				if r.err != nil {
					return nil
				}
				return committed(s, w.b1.ID, r.m.ConversationID, r.m.Seq)
			})
			if err != nil {
				t.Fatal(err)
			}
			var seqs []int64
			for i, r := range results {
				if i%12 == 5 || i%12 == 11 {
					if r.err == nil {
						t.Errorf("send %d with an unknown device succeeded: %+v", i, r.m)
					}
					continue
				}
				if r.err != nil || r.dup {
					t.Fatalf("send %d: dup %v, err %v", i, r.dup, r.err)
				}
				seqs = append(seqs, r.m.Seq)
			}
			wantGapless(t, s, map[string][]int64{w.conv.ID: seqs})
			if got := messages(t, s, w.b1.ID, w.conv.ID, 0, 100); len(got) != len(seqs) {
				t.Errorf("b1 reads %d messages, want %d", len(got), len(seqs))
			}
		}},
	}
}

// indexOf returns the index of the result stored in convID at seq.
func indexOf(results []sendResult, convID string, seq int64) int {
	for i, r := range results {
		if r.err == nil && r.m.ConversationID == convID && r.m.Seq == seq {
			return i
		}
	}
	return -1
}
