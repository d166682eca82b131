package chat_test

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/e2e"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/internal/sqlite"
)

// fixture is a service on a real SQLite store with a clock the test moves.
type fixture struct {
	svc   *chat.Service
	store sb.Store
	now   atomic.Int64
}

func newFixture(t *testing.T) *fixture {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "sb.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	bus := &inmem.Bus{}
	t.Cleanup(func() { bus.Close(); st.Close() })
	f := &fixture{store: st}
	f.now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	f.svc = chat.New(st, bus, chat.Config{Argon2: chat.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1},
		Now: func() time.Time { return time.Unix(0, f.now.Load()) }})
	return f
}

func (f *fixture) device(t *testing.T, user string) chat.Identity {
	ctx := context.Background()
	f.svc.CreateAccount(ctx, user, "password-"+user)
	id, _ := e2e.GenerateIdentity(e2e.KEMX25519)
	l, err := f.svc.Login(ctx, user, "password-"+user, chat.DeviceInfo{Name: "phone", KEM: id.KEM(), PublicKey: id.PublicKey(), SigningKey: ed25519.PublicKey(id.SigningKey())})
	if err != nil {
		t.Fatal(err)
	}
	return chat.Identity{UserID: l.UserID, DeviceID: l.DeviceID}
}

func (f *fixture) advance(d time.Duration) { f.now.Add(int64(d)) }

func TestRetention(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	alice, bob := f.device(t, "alice"), f.device(t, "bob")
	conv, err := f.svc.CreateConversation(ctx, alice, "direct", []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	send := func(id string) {
		if _, _, err := f.svc.Send(ctx, alice, &chat.SendRequest{ClientID: id, ConversationID: conv, Ciphertext: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	seqs := func() (out []int64) {
		ds, err := f.svc.Messages(ctx, bob, conv, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			out = append(out, d.Seq)
		}
		return out
	}
	for i := range 5 {
		send(string(rune('a' + i)))
	}
	f.advance(10 * 24 * time.Hour)
	send("new")

	t.Run("a pass deletes what is older than the period, in batches", func(t *testing.T) {
		f.svc.Purge(ctx, chat.RetentionConfig{Period: 5 * 24 * time.Hour, Batch: 2})
		if got := seqs(); len(got) != 1 || got[0] != 6 {
			t.Fatalf("bob's messages after the pass: %v, want [6]", got)
		}
	})
	t.Run("with purge on ack a device's acked ciphertext goes at once", func(t *testing.T) {
		send("newer")
		if err := f.svc.Ack(ctx, bob, conv, 6); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.FlushAcks(ctx); err != nil { // purges read the stored cursors
			t.Fatal(err)
		}
		f.svc.Purge(ctx, chat.RetentionConfig{Period: 5 * 24 * time.Hour, OnAck: true, Batch: 2})
		if got := seqs(); len(got) != 1 || got[0] != 7 {
			t.Fatalf("bob's messages after the pass: %v, want [7]", got)
		}
	})
}
