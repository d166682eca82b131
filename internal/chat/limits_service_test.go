package chat_test

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/e2e"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/internal/sqlite"
)

// limitedService is a service on a real SQLite store with the given limits.
func limitedService(t *testing.T, cfg chat.Config) *chat.Service {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "sb.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	bus := &inmem.Bus{}
	t.Cleanup(func() { bus.Close(); st.Close() })
	cfg.Argon2 = chat.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}
	return chat.New(st, bus, cfg)
}

func deviceInfo(t *testing.T) chat.DeviceInfo {
	id, err := e2e.GenerateIdentity(e2e.KEMX25519)
	if err != nil {
		t.Fatal(err)
	}
	return chat.DeviceInfo{Name: "phone", KEM: id.KEM(), PublicKey: id.PublicKey(), SigningKey: ed25519.PublicKey(id.SigningKey())}
}

func TestLoginLimits(t *testing.T) {
	svc := limitedService(t, chat.Config{Limits: chat.Limits{LoginPerAccount: chat.Rate{N: 3, Per: time.Hour}, DevicesPerUser: 2}})
	ctx := context.Background()
	if _, err := svc.CreateAccount(ctx, "alice", "password-alice"); err != nil {
		t.Fatal(err)
	}
	dev := deviceInfo(t)
	for i := range 2 {
		if _, err := svc.Login(ctx, "alice", "password-alice", dev); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
	}
	t.Run("a login past the device limit gets too_many_devices", func(t *testing.T) {
		_, err := svc.Login(ctx, "alice", "password-alice", dev)
		if sb.ErrorCode(err) != "too_many_devices" || sb.ErrorKind(err) != sb.ECONFLICT {
			t.Fatalf("third device: %v, want too_many_devices", err)
		}
	})
	t.Run("a wrong password past the device limit is still bad_credentials", func(t *testing.T) {
		// The limit must not tell a guesser anything: it is checked after the password.
		svc2 := limitedService(t, chat.Config{Limits: chat.Limits{DevicesPerUser: 1}})
		svc2.CreateAccount(ctx, "bob", "password-bob")
		svc2.Login(ctx, "bob", "password-bob", dev)
		if _, err := svc2.Login(ctx, "bob", "wrong-password", dev); sb.ErrorCode(err) != "bad_credentials" {
			t.Fatalf("wrong password: %v, want bad_credentials", err)
		}
	})
	t.Run("the fourth attempt within the hour is rate_limited, even with the right password", func(t *testing.T) {
		_, err := svc.Login(ctx, "alice", "password-alice", dev)
		var e *sb.Error
		if sb.ErrorCode(err) != "rate_limited" || !asError(err, &e) || e.RetryAfter < 10*time.Minute {
			t.Fatalf("fourth login: %v, want rate_limited with a retry of about 20 minutes", err)
		}
	})
	t.Run("an unknown username is limited the same way", func(t *testing.T) {
		for range 3 {
			svc.Login(ctx, "nobody", "password-x", dev)
		}
		if _, err := svc.Login(ctx, "nobody", "password-x", dev); sb.ErrorCode(err) != "rate_limited" {
			t.Fatalf("fourth login to an unknown user: %v, want rate_limited", err)
		}
	})
}

func asError(err error, e **sb.Error) bool {
	v, ok := err.(*sb.Error)
	*e = v
	return ok
}

func TestSendLimits(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	svc := limitedService(t, chat.Config{SendRate: 1000, SendBurst: 1000, Now: func() time.Time { return now },
		Limits: chat.Limits{SendPerConversation: chat.Rate{N: 4, Per: time.Second}}})
	ctx := context.Background()
	var ids []chat.Identity
	for _, u := range []string{"alice", "bob", "carol"} {
		svc.CreateAccount(ctx, u, "password-"+u)
		l, err := svc.Login(ctx, u, "password-"+u, deviceInfo(t))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, chat.Identity{UserID: l.UserID, DeviceID: l.DeviceID})
	}
	group, _ := svc.CreateConversation(ctx, ids[0], "group", []string{ids[1].UserID, ids[2].UserID}, "")
	other, _ := svc.CreateConversation(ctx, ids[0], "direct", []string{ids[1].UserID}, "")
	send := func(from chat.Identity, conv, id string) error {
		_, _, err := svc.Send(ctx, from, &chat.SendRequest{ClientID: id, ConversationID: conv, Ciphertext: []byte("x")})
		return err
	}
	for i := range 4 {
		if err := send(ids[i%3], group, "m"+string(rune('a'+i))); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := send(ids[2], group, "late"); sb.ErrorCode(err) != "rate_limited" {
		t.Fatalf("fifth send into the group within a second, from any member: %v, want rate_limited", err)
	}
	if err := send(ids[0], other, "elsewhere"); err != nil {
		t.Fatalf("a send to another conversation: %v", err)
	}
	now = now.Add(250 * time.Millisecond)
	if err := send(ids[2], group, "later"); err != nil {
		t.Fatalf("a send after a token came back: %v", err)
	}
}
