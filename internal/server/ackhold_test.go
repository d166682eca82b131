package server

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
)

// TestHoldAck: what an ack over the frame rate costs stays bounded, and
// only acks are held.
func TestHoldAck(t *testing.T) {
	ack := func(conv string, seq int) []byte {
		return fmt.Appendf(nil, `{"type":"ack","conversation":%q,"seq":%d}`, conv, seq)
	}
	tests := []struct {
		name   string
		frames [][]byte
		held   bool             // what holdAck answers for every frame
		want   map[string]int64 // what the socket holds afterwards
	}{
		{
			name:   "acks keep the highest seq per conversation",
			frames: [][]byte{ack("cnv_a", 3), ack("cnv_a", 9), ack("cnv_b", 1), ack("cnv_a", 4)},
			held:   true,
			want:   map[string]int64{"cnv_a": 9, "cnv_b": 1},
		},
		{
			name: "past maxHeldAcks conversations, acks for new ones are dropped",
			frames: func() (fs [][]byte) {
				for i := range 3 * maxHeldAcks {
					fs = append(fs, ack(fmt.Sprintf("cnv_%03d", i), i+1))
				}
				return append(fs, ack("cnv_000", 1000))
			}(),
			held: true,
			want: func() map[string]int64 {
				m := map[string]int64{"cnv_000": 1000}
				for i := 1; i < maxHeldAcks; i++ {
					m[fmt.Sprintf("cnv_%03d", i)] = int64(i + 1)
				}
				return m
			}(),
		},
		{
			name: "other frames, malformed acks and oversized frames are not held",
			frames: [][]byte{
				[]byte(`{"type":"send","id":"m1","conversation":"cnv_a","ciphertext":"eA=="}`),
				[]byte(`{"type":"ping"}`),
				[]byte(`{"type":"ack","conversation":"cnv_a"}`),
				[]byte(`{"type":"ack","seq":3}`),
				[]byte(`{"type":"ack","conversation":"cnv_a","seq":-1}`),
				[]byte(`{"type":"ack","conversation":"cnv_a","seq":"3"}`),
				[]byte(`not json`),
				[]byte(`{"type":"ack","conversation":"cnv_a","seq":3,"pad":"` + strings.Repeat("x", maxHeldAckFrame) + `"}`),
			},
			held: false,
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel() // the round that applies them finds the server shut down
			s := &Server{ctx: ctx}
			p := &peer{}
			for _, f := range tt.frames {
				if got := s.holdAck(p, f); got != tt.held {
					t.Fatalf("holdAck(%.80s) = %v, want %v", f, got, tt.held)
				}
			}
			var got map[string]int64
			if h := p.lim.held; h != nil {
				h.mu.Lock()
				got = maps.Clone(h.seqs)
				h.mu.Unlock()
				h.timer.Stop()
			}
			if !maps.Equal(got, tt.want) {
				t.Fatalf("held %v, want %v", got, tt.want)
			}
		})
	}
}
