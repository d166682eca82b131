package chat_test

import (
	"context"
	"crypto/ed25519"
	"path/filepath"
	"testing"

	"github.com/switchboard-chat/switchboard/e2e"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/internal/sqlite"
)

// sqliteStore opens a fresh, migrated SQLite store and an in-process bus,
// both closed when the test ends.
func sqliteStore(t *testing.T) (*sqlite.Store, *inmem.Bus) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "sb.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	bus := &inmem.Bus{}
	t.Cleanup(func() { bus.Close(); st.Close() })
	return st, bus
}

// cheapArgon2 keeps password hashing out of the tests' time.
var cheapArgon2 = chat.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

// loginDevice creates user (password "password-<user>") and logs one device in.
func loginDevice(t *testing.T, svc *chat.Service, user string) chat.Identity {
	t.Helper()
	ctx := context.Background()
	svc.CreateAccount(ctx, user, "password-"+user)
	id, _ := e2e.GenerateIdentity(e2e.KEMX25519)
	l, err := svc.Login(ctx, user, "password-"+user, chat.DeviceInfo{Name: "phone", KEM: id.KEM(),
		PublicKey: id.PublicKey(), SigningKey: ed25519.PublicKey(id.SigningKey())})
	if err != nil {
		t.Fatal(err)
	}
	return chat.Identity{UserID: l.UserID, DeviceID: l.DeviceID}
}
