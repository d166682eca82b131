package chat_test

import (
	"context"
	"sync/atomic"
	"testing"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// countingStore counts the Messages reads of a real store.
type countingStore struct {
	sb.Store
	reads atomic.Int32
}

func (s *countingStore) Messages(ctx context.Context, deviceID, convID string, after int64, limit int) ([]sb.Delivery, error) {
	s.reads.Add(1)
	return s.Store.Messages(ctx, deviceID, convID, after, limit)
}

func TestBacklogReadsOnlyConversationsWithUnackedMessages(t *testing.T) {
	ctx := context.Background()
	st, bus := sqliteStore(t)
	cs := &countingStore{Store: st}
	svc := chat.New(cs, bus, chat.Config{Argon2: cheapArgon2})
	alice, bob := loginDevice(t, svc, "alice"), loginDevice(t, svc, "bob")
	var convs []string
	for range 3 {
		c, err := svc.CreateConversation(ctx, alice, "group", []string{bob.UserID}, "g")
		if err != nil {
			t.Fatal(err)
		}
		convs = append(convs, c)
	}
	send := func(conv, id string) int64 {
		m, _, err := svc.Send(ctx, alice, &chat.SendRequest{ClientID: id, ConversationID: conv, Ciphertext: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		return m.Seq
	}
	backlog := func() (reads int32, got map[string][]int64, last map[string]int64) {
		got = make(map[string][]int64)
		before := cs.reads.Load()
		last, err := svc.Backlog(ctx, bob, func(conv string, page []sb.Delivery) error {
			for _, d := range page {
				got[conv] = append(got[conv], d.Seq)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return cs.reads.Load() - before, got, last
	}

	if reads, got, _ := backlog(); reads != 0 || len(got) != 0 {
		t.Fatalf("empty conversations: %d reads, backlog %v; want none", reads, got)
	}
	send(convs[0], "a")
	send(convs[1], "b")
	send(convs[1], "c")
	reads, got, last := backlog()
	if reads != 2 || len(got[convs[0]]) != 1 || len(got[convs[1]]) != 2 || len(got[convs[2]]) != 0 {
		t.Fatalf("%d reads, backlog %v; want 2 reads: 1 message, then 2, then nothing unread", reads, got)
	}
	if last[convs[0]] != 1 || last[convs[1]] != 2 || last[convs[2]] != 0 {
		t.Fatalf("last seqs %v, want 1, 2, 0", last)
	}
	for conv, seq := range last {
		if err := svc.Ack(ctx, bob, conv, seq); err != nil {
			t.Fatal(err)
		}
	}
	if reads, got, _ := backlog(); reads != 0 || len(got) != 0 {
		t.Fatalf("after acking everything: %d reads, backlog %v; want none", reads, got)
	}
	seq := send(convs[2], "d")
	if reads, got, _ := backlog(); reads != 1 || len(got) != 1 || got[convs[2]][0] != seq {
		t.Fatalf("one new message: %d reads, backlog %v; want 1 read of [%d]", reads, got, seq)
	}
}
