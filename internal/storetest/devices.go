package storetest

import (
	"fmt"
	"testing"

	"github.com/switchboard-chat/switchboard"
)

func deviceTests() []storeTest {
	return []storeTest{
		{"CreateDevice then Device returns it with its keys", func(t *testing.T, s switchboard.Store) {
			createUser(t, s, "u-alice", "alice")
			want := createDevice(t, s, "u-alice", "d-a1", at(3))
			got, err := s.Device(ctx, "d-a1")
			if err != nil {
				t.Fatalf("Device: %v", err)
			}
			wantDevice(t, got, want)
		}},

		{"CreateDevice with a session stores both: the token finds the new device", func(t *testing.T, s switchboard.Store) {
			createUser(t, s, "u-alice", "alice")
			d := newDevice("u-alice", "d-a1", at(3))
			sess := newSession(d, "login")
			if err := s.CreateDevice(ctx, d, sess); err != nil {
				t.Fatalf("CreateDevice: %v", err)
			}
			got, dev, err := s.SessionByTokenHash(ctx, tokenHash("login"))
			if err != nil {
				t.Fatalf("SessionByTokenHash: %v", err)
			}
			if got.DeviceID != d.ID || got.UserID != d.UserID {
				t.Errorf("session = %+v, want one of %s", got, d.ID)
			}
			wantTime(t, "session.ExpiresAt", got.ExpiresAt, sess.ExpiresAt)
			wantDevice(t, dev, d)
		}},

		{"CreateDevice whose session cannot be stored stores no device either", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			createSession(t, s, w.a1, "taken")
			d := newDevice(w.alice.ID, "d-a3", at(3))
			// The token hash is the sessions' key: a second one fails the insert.
			if err := s.CreateDevice(ctx, d, newSession(d, "taken")); err == nil {
				t.Fatal("CreateDevice with a taken token hash succeeded")
			}
			_, err := s.Device(ctx, d.ID)
			wantNotFound(t, "Device of the failed login", err)
			got, err := s.ActiveDevices(ctx, w.alice.ID)
			if err != nil {
				t.Fatalf("ActiveDevices: %v", err)
			}
			if ids, want := deviceIDs(got), "[d-a1 d-a2]"; ids != want {
				t.Fatalf("ActiveDevices = %s, want %s: no device without a token", ids, want)
			}
		}},

		{"CreateDevice with another device's session is refused and stores nothing", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			d := newDevice(w.alice.ID, "d-a3", at(3))
			if err := s.CreateDevice(ctx, d, newSession(w.a1, "other")); err == nil {
				t.Fatal("CreateDevice with a session of d-a1 succeeded")
			}
			_, err := s.Device(ctx, d.ID)
			wantNotFound(t, "Device(d-a3)", err)
			_, _, err = s.SessionByTokenHash(ctx, tokenHash("other"))
			wantNotFound(t, "SessionByTokenHash(other)", err)
		}},

		{"Device of an unknown id returns ErrNotFound", func(t *testing.T, s switchboard.Store) {
			_, err := s.Device(ctx, "d-nope")
			wantNotFound(t, "Device(d-nope)", err)
		}},

		{"ActiveDevices orders by user id, then created_at, then device id", func(t *testing.T, s switchboard.Store) {
			createUser(t, s, "u-b", "b")
			createUser(t, s, "u-a", "a")
			// Created in an order that matches none of the sort keys.
			createDevice(t, s, "u-b", "d-1", at(1))
			createDevice(t, s, "u-a", "d-9", at(2))
			createDevice(t, s, "u-a", "d-8", at(3))
			createDevice(t, s, "u-a", "d-7", at(2))
			createDevice(t, s, "u-b", "d-0", at(1))
			got, err := s.ActiveDevices(ctx, "u-b", "u-a")
			if err != nil {
				t.Fatalf("ActiveDevices: %v", err)
			}
			want := "[d-7 d-9 d-8 d-0 d-1]"
			if ids := deviceIDs(got); ids != want {
				t.Fatalf("ActiveDevices = %s, want %s", ids, want)
			}
		}},

		{"ActiveDevices leaves out revoked devices and users not asked for", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			if err := s.RevokeDevice(ctx, w.alice.ID, w.a1.ID, at(5)); err != nil {
				t.Fatalf("RevokeDevice: %v", err)
			}
			got, err := s.ActiveDevices(ctx, w.alice.ID, w.bob.ID, "u-unknown")
			if err != nil {
				t.Fatalf("ActiveDevices: %v", err)
			}
			if ids, want := deviceIDs(got), "[d-a2 d-b1]"; ids != want {
				t.Fatalf("ActiveDevices = %s, want %s", ids, want)
			}
			wantDevice(t, &got[0], w.a2)
		}},

		{"ActiveDevices of no users returns none", func(t *testing.T, s switchboard.Store) {
			newWorld(t, s)
			got, err := s.ActiveDevices(ctx)
			if err != nil || len(got) != 0 {
				t.Fatalf("ActiveDevices() = %v, %v; want none", got, err)
			}
		}},

		{"RevokeDevice marks the device revoked and deletes only its sessions", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			createSession(t, s, w.a1, "token-a1")
			createSession(t, s, w.a1, "token-a1-bis")
			createSession(t, s, w.a2, "token-a2")
			if err := s.RevokeDevice(ctx, w.alice.ID, w.a1.ID, at(7)); err != nil {
				t.Fatalf("RevokeDevice: %v", err)
			}
			got, err := s.Device(ctx, w.a1.ID)
			if err != nil {
				t.Fatalf("Device: %v", err)
			}
			revoked := *w.a1
			revokedAt := at(7)
			revoked.RevokedAt = &revokedAt
			wantDevice(t, got, &revoked)
			for _, token := range []string{"token-a1", "token-a1-bis"} {
				_, _, err := s.SessionByTokenHash(ctx, tokenHash(token))
				wantNotFound(t, "session of the revoked device", err)
			}
			if _, _, err := s.SessionByTokenHash(ctx, tokenHash("token-a2")); err != nil {
				t.Fatalf("session of another device of the same user: %v", err)
			}
		}},

		{"RevokeDevice of another user's device returns ErrNotFound and changes nothing", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			createSession(t, s, w.b1, "token-b1")
			err := s.RevokeDevice(ctx, w.alice.ID, w.b1.ID, at(7))
			wantNotFound(t, "RevokeDevice(alice, b1)", err)
			got, err := s.Device(ctx, w.b1.ID)
			if err != nil {
				t.Fatalf("Device: %v", err)
			}
			wantDevice(t, got, w.b1)
			if _, _, err := s.SessionByTokenHash(ctx, tokenHash("token-b1")); err != nil {
				t.Fatalf("bob's session after a refused revoke: %v", err)
			}
		}},

		{"RevokeDevice of an unknown or already revoked device returns ErrNotFound", func(t *testing.T, s switchboard.Store) {
			w := newWorld(t, s)
			if err := s.RevokeDevice(ctx, w.alice.ID, w.a1.ID, at(7)); err != nil {
				t.Fatalf("RevokeDevice: %v", err)
			}
			tests := []struct{ name, user, device string }{
				{"unknown device", w.alice.ID, "d-nope"},
				{"unknown user", "u-nope", w.a2.ID},
				{"already revoked", w.alice.ID, w.a1.ID},
			}
			for _, tt := range tests {
				err := s.RevokeDevice(ctx, tt.user, tt.device, at(8))
				wantNotFound(t, "RevokeDevice of an "+tt.name, err)
			}
			got, err := s.Device(ctx, w.a1.ID)
			if err != nil || got.RevokedAt == nil {
				t.Fatalf("Device(a1) = %+v, %v; want revoked", got, err)
			}
			wantTime(t, "RevokedAt after a second revoke", *got.RevokedAt, at(7))
		}},
	}
}

func deviceIDs(ds []switchboard.Device) string {
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	return fmt.Sprint(ids)
}
