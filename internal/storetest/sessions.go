package storetest

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard"
)

func tokenHash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func newSession(d *switchboard.Device, token string) *switchboard.Session {
	return &switchboard.Session{
		TokenHash: tokenHash(token), UserID: d.UserID, DeviceID: d.ID,
		CreatedAt: at(4), ExpiresAt: at(4).Add(30*24*time.Hour + 7*time.Millisecond),
	}
}

func createSession(t *testing.T, s switchboard.Store, d *switchboard.Device, token string) *switchboard.Session {
	t.Helper()
	sess := newSession(d, token)
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatalf("CreateSession(%s): %v", token, err)
	}
	return sess
}

func sessionTests() []storeTest {
	return []storeTest{
		{"CreateSession then SessionByTokenHash returns the session and its device", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			want := createSession(t, s, w.a2, "secret")
			got, dev, err := s.SessionByTokenHash(ctx, tokenHash("secret"))
			if err != nil {
				t.Fatalf("SessionByTokenHash: %v", err)
			}
			if !bytes.Equal(got.TokenHash, want.TokenHash) || got.UserID != want.UserID || got.DeviceID != want.DeviceID {
				t.Errorf("session = %+v, want %+v", got, want)
			}
			wantTime(t, "session.CreatedAt", got.CreatedAt, want.CreatedAt)
			wantTime(t, "session.ExpiresAt", got.ExpiresAt, want.ExpiresAt)
			wantDevice(t, dev, w.a2)
		}},

		{"SessionByTokenHash returns the device even when it is revoked", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			if err := s.RevokeDevice(ctx, w.alice.ID, w.a1.ID, at(6)); err != nil {
				t.Fatalf("RevokeDevice: %v", err)
			}
			// Revoking deleted the device's sessions; one created afterwards
			// (a race the caller lost) must still show the revocation.
			createSession(t, s, w.a1, "late")
			_, dev, err := s.SessionByTokenHash(ctx, tokenHash("late"))
			if err != nil {
				t.Fatalf("SessionByTokenHash: %v", err)
			}
			if dev.RevokedAt == nil {
				t.Fatalf("device = %+v, want it revoked", dev)
			}
			wantTime(t, "device.RevokedAt", *dev.RevokedAt, at(6))
		}},

		{"SessionByTokenHash of an unknown hash returns ErrNotFound", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			createSession(t, s, w.a1, "secret")
			_, _, err := s.SessionByTokenHash(ctx, tokenHash("other"))
			wantNotFound(t, "SessionByTokenHash(other)", err)
		}},
	}
}
