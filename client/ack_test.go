package client

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"
)

// ackFrames returns the ack frames the fake has received so far.
func (f *fakeServer) ackFrames() []fakeAck {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.acks)
}

func TestABurstOfAcksIsCoalesced(t *testing.T) {
	// An application that acks every message must not run into the
	// server's per-socket frame limit (issue 16): the Conn sends one ack
	// per conversation per AckInterval, carrying the highest seq.
	const n = 1000
	tests := []struct {
		name string
		opts ConnOptions
		ack  func(t *testing.T, f *fakeServer, c *Conn)
		// closeConn ends the burst with Close instead of waiting for the
		// interval's flush.
		closeConn bool
		want      []fakeAck // nil: check only that there are far fewer frames than acks
	}{
		{
			name: "Close writes one ack per conversation with its highest seq",
			opts: ConnOptions{AckInterval: time.Hour},
			ack: func(t *testing.T, _ *fakeServer, c *Conn) {
				for i := range int64(n) {
					ackOrFail(t, c, "cnv_a", i+1)
					ackOrFail(t, c, "cnv_b", i/100+1)
					ackOrFail(t, c, "cnv_a", 1) // behind: nothing to send
				}
			},
			closeConn: true,
			want:      []fakeAck{{"cnv_a", n}, {"cnv_b", n / 100}},
		},
		{
			name: "the interval's flush sends the highest seq without Close",
			ack: func(t *testing.T, _ *fakeServer, c *Conn) {
				for i := range int64(n) {
					ackOrFail(t, c, "cnv_a", i+1)
				}
			},
		},
		{
			name: "AutoAck of a busy conversation is coalesced too",
			opts: ConnOptions{AutoAck: true, Buffer: n},
			ack: func(t *testing.T, f *fakeServer, c *Conn) {
				for range n {
					f.publish("cnv_a", []byte("m"))
				}
				for range n {
					recv(t, c)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			c := f.connect(tt.opts)
			tt.ack(t, f, c)
			if tt.closeConn {
				c.Close()
			}
			eventually(t, fmt.Sprintf("the cursor reaches %d", n), func() bool { return f.cursor("cnv_a") == n })
			if tt.want != nil {
				eventually(t, "every ack arrives", func() bool { return len(f.ackFrames()) >= len(tt.want) })
				got := f.ackFrames()
				slices.SortFunc(got, func(a, b fakeAck) int { return cmp.Compare(a.Conversation, b.Conversation) })
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("%d ack frames, first %v; want %v", len(got), got[:min(len(got), 5)], tt.want)
				}
				return
			}
			got := f.ackFrames()
			if len(got) >= n/10 {
				t.Fatalf("%d ack frames for %d acks, want them coalesced", len(got), n)
			}
			if !slices.IsSortedFunc(got, func(a, b fakeAck) int { return cmp.Compare(a.Seq, b.Seq) }) {
				t.Fatalf("ack frames %v do not move forward", got)
			}
		})
	}
}

func ackOrFail(t *testing.T, c *Conn, conv string, seq int64) {
	t.Helper()
	if err := c.Ack(ctxFor(t, time.Second), conv, seq); err != nil {
		t.Fatalf("Ack %s %d: %v", conv, seq, err)
	}
}
