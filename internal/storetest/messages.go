package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard"
)

func messageTests() []storeTest {
	return []storeTest{
		{"AppendMessage numbers each conversation's messages 1, 2, 3", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			other := createConversation(t, s, "conv-other", w.alice.ID, w.alice.ID, w.bob.ID)
			for i, convID := range []string{w.conv.ID, other.ID, w.conv.ID, w.conv.ID, other.ID} {
				m := w.perDevice(fmt.Sprintf("m%d", i))
				m.ConversationID = convID
				appendMessage(t, s, m)
			}
			for convID, want := range map[string]int64{w.conv.ID: 3, other.ID: 2} {
				got := messages(t, s, w.b1.ID, convID, 0, 10)
				for i, d := range got {
					if d.Seq != int64(i+1) || d.ConversationID != convID {
						t.Errorf("%s delivery %d: conversation %s seq %d", convID, i, d.ConversationID, d.Seq)
					}
				}
				if int64(len(got)) != want {
					t.Errorf("%s has %d messages, want %d", convID, len(got), want)
				}
			}
		}},

		{"AppendMessage returns the stored message and moves the head seq", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			appendMessage(t, s, w.perDevice("m1"))
			m := w.perDevice("m2")
			got := appendMessage(t, s, m)
			if got.Seq != 2 || got.ConversationID != m.ConversationID || got.SenderUserID != m.SenderUserID ||
				got.SenderDeviceID != m.SenderDeviceID || got.ClientID != m.ClientID || got.Shared != nil {
				t.Errorf("stored = %+v, want seq 2 and the fields of %+v", got, m)
			}
			wantTime(t, "stored.SentAt", got.SentAt, m.SentAt)
			conv, err := s.Conversation(ctx, w.conv.ID)
			if err != nil {
				t.Fatalf("Conversation: %v", err)
			}
			if conv.HeadSeq != 2 {
				t.Errorf("HeadSeq = %d, want 2", conv.HeadSeq)
			}
			d := messages(t, s, w.b1.ID, w.conv.ID, 1, 10)
			if len(d) != 1 || d[0].SenderUserID != w.alice.ID || d[0].SenderDeviceID != w.a1.ID {
				t.Fatalf("Messages = %+v, want m2 from alice's a1", d)
			}
			wantTime(t, "delivery.SentAt", d[0].SentAt, m.SentAt)
		}},

		{"AppendMessage sets a zero SentAt to now, in UTC, to the millisecond", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			m := w.perDevice("m1")
			m.SentAt = time.Time{}
			before := time.Now().Truncate(time.Millisecond)
			got := appendMessage(t, s, m)
			after := time.Now()
			if got.SentAt.Before(before) || got.SentAt.After(after) || !got.SentAt.Equal(got.SentAt.Truncate(time.Millisecond)) {
				t.Errorf("SentAt = %v, want a millisecond between %v and %v", got.SentAt, before, after)
			}
			d := messages(t, s, w.b1.ID, w.conv.ID, 0, 10)
			wantTime(t, "delivery.SentAt", d[0].SentAt, got.SentAt)
		}},

		{"AppendMessage keeps a given SentAt, returned in UTC", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			m := w.perDevice("m1")
			m.SentAt = at(20).In(time.FixedZone("UTC+5", 5*60*60))
			got := appendMessage(t, s, m)
			wantTime(t, "stored.SentAt", got.SentAt, at(20))
			d := messages(t, s, w.b1.ID, w.conv.ID, 0, 10)
			wantTime(t, "delivery.SentAt", d[0].SentAt, at(20))
		}},

		{"AppendMessage to an unknown conversation returns ErrNotFound", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			m := w.perDevice("m1")
			m.ConversationID = "conv-nope"
			_, _, err := s.AppendMessage(ctx, m)
			wantNotFound(t, "AppendMessage(conv-nope)", err)
		}},

		{"a shared ciphertext is delivered to every recipient", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			appendMessage(t, s, &switchboard.Message{
				ConversationID: w.conv.ID, SenderUserID: w.alice.ID, SenderDeviceID: w.a1.ID, ClientID: "m1",
				Shared:      []byte("for all"),
				Ciphertexts: map[string][]byte{w.a2.ID: nil, w.b1.ID: nil},
			})
			for _, dev := range []string{w.a2.ID, w.b1.ID} {
				wantDeliveries(t, messages(t, s, dev, w.conv.ID, 0, 10), map[int64]string{1: "for all"})
			}
			wantDeliveries(t, messages(t, s, w.a1.ID, w.conv.ID, 0, 10), nil)
		}},

		{"per-device ciphertexts are delivered each to its own device only", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			appendMessage(t, s, w.perDevice("m1"))
			m2 := w.perDevice("m2")
			delete(m2.Ciphertexts, w.a2.ID)
			appendMessage(t, s, m2)
			wantDeliveries(t, messages(t, s, w.b1.ID, w.conv.ID, 0, 10), map[int64]string{1: "m1 for d-b1", 2: "m2 for d-b1"})
			wantDeliveries(t, messages(t, s, w.a2.ID, w.conv.ID, 0, 10), map[int64]string{1: "m1 for d-a2"})
			// Neither the sender nor a device outside the conversation is a recipient.
			wantDeliveries(t, messages(t, s, w.a1.ID, w.conv.ID, 0, 10), nil)
			wantDeliveries(t, messages(t, s, w.c1.ID, w.conv.ID, 0, 10), nil)
		}},

		{"a message to 300 recipient devices reaches each, shared or per device", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			var devices []string
			for i := range 300 {
				devices = append(devices, createDevice(t, s, w.bob.ID, fmt.Sprintf("d-b%03d", i), at(3)).ID)
			}
			shared := &switchboard.Message{ConversationID: w.conv.ID, SenderUserID: w.alice.ID, SenderDeviceID: w.a1.ID,
				ClientID: "shared", Shared: []byte("for all"), Ciphertexts: make(map[string][]byte)}
			perDevice := &switchboard.Message{ConversationID: w.conv.ID, SenderUserID: w.alice.ID, SenderDeviceID: w.a1.ID,
				ClientID: "own", Ciphertexts: make(map[string][]byte)}
			for _, d := range devices {
				shared.Ciphertexts[d] = nil
				perDevice.Ciphertexts[d] = []byte("for " + d)
			}
			appendMessage(t, s, shared)
			appendMessage(t, s, perDevice)
			for _, d := range devices {
				wantDeliveries(t, messages(t, s, d, w.conv.ID, 0, 10), map[int64]string{1: "for all", 2: "for " + d})
			}
		}},

		{"Messages pages by afterSeq and limit", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			for i := 1; i <= 5; i++ {
				appendMessage(t, s, w.perDevice(fmt.Sprintf("m%d", i)))
			}
			tests := []struct {
				after int64
				limit int
				want  []int64
			}{
				{0, 2, []int64{1, 2}},
				{2, 2, []int64{3, 4}},
				{4, 2, []int64{5}},
				{5, 2, nil},
				{0, 100, []int64{1, 2, 3, 4, 5}},
				{3, 1, []int64{4}},
			}
			for _, tt := range tests {
				got := messages(t, s, w.b1.ID, w.conv.ID, tt.after, tt.limit)
				var seqs []int64
				for _, d := range got {
					seqs = append(seqs, d.Seq)
				}
				if fmt.Sprint(seqs) != fmt.Sprint(tt.want) {
					t.Errorf("Messages(after %d, limit %d) = seqs %v, want %v", tt.after, tt.limit, seqs, tt.want)
				}
			}
		}},
	}
}
