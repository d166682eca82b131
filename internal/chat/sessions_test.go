package chat_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/e2e"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// mapCache is a SessionCache in a map that can be made to fail.
type mapCache struct {
	mu      sync.Mutex
	fail    bool
	entries map[string][3]string // hash -> user, device, expiry
	revokes []string
	gets    int
}

var errCacheDown = errors.New("cache down")

func (m *mapCache) SessionGet(_ context.Context, h []byte) (string, string, time.Time, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	if m.fail {
		return "", "", time.Time{}, false, errCacheDown
	}
	e, ok := m.entries[string(h)]
	if !ok {
		return "", "", time.Time{}, false, nil
	}
	exp, _ := time.Parse(time.RFC3339Nano, e[2])
	return e[0], e[1], exp, true, nil
}

func (m *mapCache) SessionPut(_ context.Context, h []byte, user, device string, exp time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errCacheDown
	}
	m.entries[string(h)] = [3]string{user, device, exp.Format(time.RFC3339Nano)}
	return nil
}

func (m *mapCache) SessionRevoke(_ context.Context, device string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errCacheDown
	}
	m.revokes = append(m.revokes, device)
	for h, e := range m.entries {
		if e[1] == device {
			delete(m.entries, h)
		}
	}
	return nil
}

func (m *mapCache) setFail(f bool) { m.mu.Lock(); m.fail = f; m.mu.Unlock() }

func TestSessionCache(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*chat.Service, *mapCache, *chat.Login, *chat.Login) {
		st, bus := sqliteStore(t)
		cache := &mapCache{entries: map[string][3]string{}}
		svc := chat.New(st, bus, chat.Config{Argon2: cheapArgon2, Sessions: cache})
		svc.CreateAccount(ctx, "alice", "password-alice")
		login := func(name string) *chat.Login {
			id, _ := e2e.GenerateIdentity(e2e.KEMX25519)
			l, err := svc.Login(ctx, "alice", "password-alice", chat.DeviceInfo{Name: name, KEM: id.KEM(),
				PublicKey: id.PublicKey(), SigningKey: ed25519.PublicKey(id.SigningKey())})
			if err != nil {
				t.Fatal(err)
			}
			return l
		}
		return svc, cache, login("phone"), login("laptop")
	}
	auth := func(t *testing.T, svc *chat.Service, token string) error {
		t.Helper()
		_, err := svc.Authenticate(ctx, token)
		return err
	}
	unauthorized := func(err error) bool {
		var e *sb.Error
		return errors.As(err, &e) && e.Kind == sb.EUNAUTHORIZED
	}

	t.Run("a lookup is cached, and the next is answered from the cache", func(t *testing.T) {
		svc, _, phone, _ := setup(t)
		for range 3 {
			if err := auth(t, svc, phone.Token); err != nil {
				t.Fatal(err)
			}
		}
		if hits, misses := svc.SessionCacheStats(); hits != 2 || misses != 1 {
			t.Fatalf("hits %d, misses %d; want 2 and 1", hits, misses)
		}
	})

	t.Run("a revocation drops the device's cached tokens and the token fails at once", func(t *testing.T) {
		svc, cache, phone, laptop := setup(t)
		auth(t, svc, phone.Token)
		if err := svc.RevokeDevice(ctx, chat.Identity{UserID: laptop.UserID, DeviceID: laptop.DeviceID}, phone.DeviceID); err != nil {
			t.Fatal(err)
		}
		if len(cache.revokes) != 1 || cache.revokes[0] != phone.DeviceID {
			t.Fatalf("cache revocations %v, want the phone", cache.revokes)
		}
		if err := auth(t, svc, phone.Token); !unauthorized(err) {
			t.Fatalf("revoked token: %v, want unauthorized", err)
		}
	})

	t.Run("a failing cache sends lookups to the store, and is left alone for a second", func(t *testing.T) {
		svc, cache, phone, _ := setup(t)
		cache.setFail(true)
		for range 5 {
			if err := auth(t, svc, phone.Token); err != nil {
				t.Fatalf("lookup with the cache down: %v", err)
			}
		}
		if cache.gets != 1 {
			t.Fatalf("the failing cache was asked %d times in a row, want once", cache.gets)
		}
	})

	t.Run("a revocation made while the cache failed is not trusted from it here, and is dropped once it answers", func(t *testing.T) {
		svc, cache, phone, laptop := setup(t)
		auth(t, svc, phone.Token) // cached
		cache.setFail(true)
		if err := svc.RevokeDevice(ctx, chat.Identity{UserID: laptop.UserID, DeviceID: laptop.DeviceID}, phone.DeviceID); err != nil {
			t.Fatal(err)
		}
		cache.setFail(false)
		deadline := time.Now().Add(30 * time.Second)
		for {
			// The cache still holds the phone's session; this node reads
			// the store for it instead.
			if err := auth(t, svc, phone.Token); !unauthorized(err) {
				t.Fatalf("revoked token while its entry may be cached: %v, want unauthorized", err)
			}
			cache.mu.Lock()
			dropped := len(cache.revokes) == 1
			cache.mu.Unlock()
			if dropped {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the revocation was never retried once the cache answered")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
