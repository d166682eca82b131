package server

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard"
)

// recorder is a sequencer's hub: what it delivered and what it read from the store.
type recorder struct {
	mu        sync.Mutex
	delivered []string // "conv:seq"
	caughtUp  []string // "conv:from-to"
	gap       chan struct{}
}

func (r *recorder) deliver(m *sb.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delivered = append(r.delivered, fmt.Sprintf("%s:%d", m.ConversationID, m.Seq))
}

func (r *recorder) catchUp(conv string, from, to int64) {
	r.mu.Lock()
	r.caughtUp = append(r.caughtUp, fmt.Sprintf("%s:%d-%d", conv, from, to))
	r.mu.Unlock()
	r.gap <- struct{}{}
}

func (r *recorder) got() (delivered, caughtUp []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.delivered), slices.Clone(r.caughtUp)
}

func msg(conv string, seq int64) *sb.Message { return &sb.Message{ConversationID: conv, Seq: seq} }

func TestSequencer(t *testing.T) {
	newSeq := func(grace time.Duration) (*sequencer, *recorder) {
		r := &recorder{gap: make(chan struct{}, 4)}
		return newSequencer(grace, r.deliver, r.catchUp, func(m *sb.Message) int64 {
			switch m.ConversationID {
			case "known":
				return 3 // its local recipients have had seqs up to 2
			case "elsewhere":
				if m.SenderDeviceID == "local" {
					return -1 // its recipients are on other nodes
				}
				return 1 // the local recipient has had nothing of it
			}
			return m.Seq
		}), r
	}

	t.Run("messages in order go out at once", func(t *testing.T) {
		q, r := newSeq(time.Hour)
		for seq := int64(5); seq <= 7; seq++ {
			q.add(msg("a", seq))
		}
		if d, _ := r.got(); !slices.Equal(d, []string{"a:5", "a:6", "a:7"}) {
			t.Errorf("delivered %v", d)
		}
	})

	t.Run("each held message tells how long it waited, the others nothing", func(t *testing.T) {
		q, _ := newSeq(time.Hour)
		var waits []time.Duration
		q.waited = func(d time.Duration) { waits = append(waits, d) } // called under q.mu
		q.add(msg("a", 1))
		q.add(msg("a", 3))
		q.add(msg("a", 4))
		time.Sleep(5 * time.Millisecond)
		q.add(msg("a", 2))
		q.add(msg("a", 5))
		if len(waits) != 2 || waits[0] < 5*time.Millisecond || waits[1] < 5*time.Millisecond {
			t.Fatalf("waits %v: want two (seqs 3 and 4), each at least the 5 ms they were held", waits)
		}
	})
	t.Run("a message past a gap waits for it, then both go out in seq order", func(t *testing.T) {
		q, r := newSeq(time.Hour)
		q.add(msg("a", 1))
		q.add(msg("a", 3))
		q.add(msg("b", 9)) // another conversation is not held up
		q.add(msg("a", 4))
		if d, _ := r.got(); !slices.Equal(d, []string{"a:1", "b:9"}) {
			t.Fatalf("before the gap fills: delivered %v, want a:1 b:9", d)
		}
		q.add(msg("a", 2))
		d, c := r.got()
		if !slices.Equal(d, []string{"a:1", "b:9", "a:2", "a:3", "a:4"}) {
			t.Errorf("delivered %v, want a:2 a:3 a:4 once the gap filled", d)
		}
		if len(c) != 0 {
			t.Errorf("read %v from the store, want nothing: the gap filled", c)
		}
	})

	t.Run("a gap no publish fills is read from the store after the grace, then the held messages go out", func(t *testing.T) {
		q, r := newSeq(20 * time.Millisecond)
		q.add(msg("a", 1))
		q.add(msg("a", 4))
		q.add(msg("a", 5))
		select {
		case <-r.gap:
		case <-time.After(5 * time.Second):
			t.Fatal("no store read after the grace")
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			d, c := r.got()
			if slices.Equal(d, []string{"a:1", "a:4", "a:5"}) {
				if !slices.Equal(c, []string{"a:2-3"}) {
					t.Errorf("store reads %v, want a:2-3", c)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("delivered %v, want a:1 a:4 a:5", d)
			}
			time.Sleep(time.Millisecond)
		}
		q.add(msg("a", 2)) // the lost publish after all: sockets drop what they have
		q.add(msg("a", 6))
		if d, _ := r.got(); !slices.Equal(d, []string{"a:1", "a:4", "a:5", "a:2", "a:6"}) {
			t.Errorf("delivered %v, want the late a:2 handed on and a:6 at once", d)
		}
	})

	t.Run("a message with no local recipient goes on without tracking its conversation, so earlier seqs that come later still wait for their turn", func(t *testing.T) {
		q, r := newSeq(time.Hour)
		own := msg("elsewhere", 5) // the local device's own send: its recipients are elsewhere
		own.SenderDeviceID = "local"
		q.add(own)
		q.add(msg("elsewhere", 3)) // publishes Redis took late, from the other member
		q.add(msg("elsewhere", 1))
		q.add(msg("elsewhere", 2))
		q.add(msg("elsewhere", 4))
		d, _ := r.got()
		if !slices.Equal(d, []string{"elsewhere:5", "elsewhere:1", "elsewhere:2", "elsewhere:3", "elsewhere:4"}) {
			t.Errorf("delivered %v, want the untracked 5, then 1 to 4 in order (3 waiting for 1 and 2)", d)
		}
	})

	t.Run("a conversation's first message waits for the seqs its recipients have not had", func(t *testing.T) {
		q, r := newSeq(time.Hour)
		q.add(msg("known", 4))
		if d, _ := r.got(); len(d) != 0 {
			t.Fatalf("delivered %v before seq 3", d)
		}
		q.add(msg("known", 3))
		if d, _ := r.got(); !slices.Equal(d, []string{"known:3", "known:4"}) {
			t.Errorf("delivered %v, want known:3 known:4", d)
		}
	})

	t.Run("while a resume holds, a gap is not read after its grace; advancing releases what waited, in order", func(t *testing.T) {
		q, r := newSeq(5 * time.Millisecond)
		q.add(msg("a", 1))
		done := q.hold()
		q.add(msg("a", 4))
		q.add(msg("a", 5))
		time.Sleep(50 * time.Millisecond) // many graces
		if d, c := r.got(); !slices.Equal(d, []string{"a:1"}) || len(c) != 0 {
			t.Fatalf("while held: delivered %v and read %v, want a:1 and no store read (the resume reads the gap)", d, c)
		}
		q.advance("a", 4) // the resume wrote 2 and 3 to every socket
		done()
		if d, _ := r.got(); !slices.Equal(d, []string{"a:1", "a:4", "a:5"}) {
			t.Errorf("delivered %v, want a:4 a:5 once advanced", d)
		}
	})

	t.Run("advancing hands on the held messages below the new next, then those next in line", func(t *testing.T) {
		q, r := newSeq(time.Hour)
		q.add(msg("a", 1))
		q.add(msg("a", 3))
		q.add(msg("a", 5))
		q.add(msg("a", 6))
		q.advance("a", 5)
		q.advance("a", 2)     // never back
		q.advance("other", 9) // not tracked: nothing to do
		if d, _ := r.got(); !slices.Equal(d, []string{"a:1", "a:3", "a:5", "a:6"}) {
			t.Errorf("delivered %v, want a:3 (sockets skip what they have), then a:5 a:6", d)
		}
		q.add(msg("a", 7))
		if d, _ := r.got(); len(d) != 5 || d[4] != "a:7" {
			t.Errorf("delivered %v, want a:7 at once after", d)
		}
	})

	t.Run("idle conversations with nothing held are forgotten", func(t *testing.T) {
		q, _ := newSeq(time.Hour)
		q.idle = time.Millisecond
		q.add(msg("a", 1))
		q.add(msg("b", 1))
		q.add(msg("b", 3)) // held: b stays
		time.Sleep(5 * time.Millisecond)
		q.swept = time.Now().Add(-2 * time.Minute)
		q.add(msg("c", 1))
		q.mu.Lock()
		defer q.mu.Unlock()
		if _, ok := q.convs["a"]; ok {
			t.Error("a is still tracked after its idle time")
		}
		if _, ok := q.convs["b"]; !ok {
			t.Error("b was forgotten while a message of it waits")
		}
	})
}

// BenchmarkSequencer is the sequencer's cost per message on the hub's path:
// messages in order over 1,000 conversations (what a node sees when
// nothing crosses), delivery a no-op.
func BenchmarkSequencer(b *testing.B) {
	q := newSequencer(time.Second, func(*sb.Message) {}, func(string, int64, int64) {}, func(m *sb.Message) int64 { return m.Seq })
	msgs := make([]*sb.Message, 1000)
	for i := range msgs {
		msgs[i] = msg(fmt.Sprint("conv-", i), 1)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		m := msgs[i%len(msgs)]
		q.add(m)
		m.Seq++
	}
}
