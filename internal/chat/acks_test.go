package chat_test

import (
	"context"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// slowAcks holds every store Ack until release is closed.
type slowAcks struct {
	sb.Store
	release chan struct{}
}

func (s *slowAcks) Ack(ctx context.Context, deviceID, convID string, seq int64) error {
	<-s.release
	return s.Store.Ack(ctx, deviceID, convID, seq)
}

// TestAckIsSeenBeforeItsCommit: Ack returns before the commit,
// the device's next sync already counts the ack (nothing acked is replayed),
// the highest of concurrent acks wins, and FlushAcks waits for the commit.
func TestAckIsSeenBeforeItsCommit(t *testing.T) {
	ctx := context.Background()
	st, bus := sqliteStore(t)
	slow := &slowAcks{Store: st, release: make(chan struct{})}
	svc := chat.New(slow, bus, chat.Config{Argon2: cheapArgon2})
	alice, bob := loginDevice(t, svc, "alice"), loginDevice(t, svc, "bob")
	conv, err := svc.CreateConversation(ctx, alice, "group", []string{bob.UserID}, "g")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, _, err := svc.Send(ctx, alice, &chat.SendRequest{ClientID: id, ConversationID: conv, Ciphertext: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	backlog := func() []int64 {
		var seqs []int64
		if _, err := svc.Backlog(ctx, bob, func(_ string, page []sb.Delivery) error {
			for _, d := range page {
				seqs = append(seqs, d.Seq)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return seqs
	}

	var wg sync.WaitGroup
	for seq := int64(1); seq <= 3; seq++ {
		wg.Go(func() {
			if err := svc.Ack(ctx, bob, conv, seq); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait() // every Ack returned while the store holds every Ack
	if got := backlog(); len(got) != 1 || got[0] != 4 {
		t.Fatalf("backlog after acking 3 (not committed yet) = %v, want [4]", got)
	}
	if err := svc.Ack(ctx, alice, "cnv_not_mine", 1); err == nil {
		t.Fatal("Ack in a conversation the device is not in was taken")
	}
	if err := svc.Ack(ctx, bob, conv, -1); err == nil {
		t.Fatal("Ack of a negative seq was taken")
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := svc.FlushAcks(short); err == nil {
		t.Fatal("FlushAcks returned while the store still held the acks")
	}
	close(slow.release)
	if err := svc.FlushAcks(ctx); err != nil {
		t.Fatal(err)
	}
	cursors, err := st.Cursors(ctx, bob.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	if cursors[conv] != 3 {
		t.Fatalf("stored cursor %d after FlushAcks, want 3 (the highest ack)", cursors[conv])
	}
	if got := backlog(); len(got) != 1 || got[0] != 4 {
		t.Fatalf("backlog after the commit = %v, want [4]", got)
	}
}
