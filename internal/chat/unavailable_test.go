package chat_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// downStore is a store whose conversation reads fail while down is set, as
// PostgreSQL's do while it restarts.
type downStore struct {
	sb.Store
	down atomic.Bool
}

var _ sb.Store = (*downStore)(nil)

func (d *downStore) Conversation(ctx context.Context, id string) (*sb.Conversation, error) {
	if d.down.Load() {
		return nil, errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	}
	return d.Store.Conversation(ctx, id)
}

// A send that cannot be checked because the store does not answer is
// refused as unavailable (retry with the same id), never as internal.
func TestASendTheStoreCannotCheckIsUnavailable(t *testing.T) {
	ctx := context.Background()
	st, bus := sqliteStore(t)
	d := &downStore{Store: st}
	svc := chat.New(d, bus, chat.Config{Argon2: cheapArgon2})
	alice, bob := loginDevice(t, svc, "alice"), loginDevice(t, svc, "bob")
	conv, err := svc.CreateConversation(ctx, alice, "group", []string{bob.UserID}, "g")
	if err != nil {
		t.Fatal(err)
	}
	d.down.Store(true)
	req := &chat.SendRequest{ClientID: "m1", ConversationID: conv, Ciphertext: []byte("x")}
	if _, _, err := svc.Send(ctx, alice, req); sb.ErrorCode(err) != "unavailable" {
		t.Fatalf("send while the store is down: %v, want unavailable", err)
	}
	d.down.Store(false)
	m, _, err := svc.Send(ctx, alice, req)
	if err != nil || m.Seq != 1 {
		t.Fatalf("the same send once the store is back: %+v, %v; want seq 1", m, err)
	}
}
