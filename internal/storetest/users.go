package storetest

import (
	"errors"
	"testing"

	"github.com/switchboard-chat/switchboard"
)

func userTests() []storeTest {
	return []storeTest{
		{"CreateUser then UserByName returns the user", func(t *testing.T, s switchboard.Store) {
			want := createUser(t, s, "u-alice", "alice")
			got, err := s.UserByName(ctx, "alice")
			if err != nil {
				t.Fatalf("UserByName: %v", err)
			}
			wantUser(t, got, want)
		}},

		{"CreateUser with a taken username returns ErrUsernameTaken and keeps the first user", func(t *testing.T, s switchboard.Store) {
			first := createUser(t, s, "u-alice", "alice")
			err := s.CreateUser(ctx, &switchboard.User{ID: "u-other", Username: "alice", PasswordHash: "x", CreatedAt: at(5)})
			if !errors.Is(err, switchboard.ErrUsernameTaken) {
				t.Fatalf("CreateUser: err = %v, want one wrapping ErrUsernameTaken", err)
			}
			got, err := s.UserByName(ctx, "alice")
			if err != nil {
				t.Fatalf("UserByName: %v", err)
			}
			wantUser(t, got, first)
			if ok, err := s.UserExists(ctx, "u-other"); err != nil || ok {
				t.Fatalf("UserExists(u-other) = %v, %v; want false, nil", ok, err)
			}
		}},

		{"usernames are one regardless of case: a second in another case is taken, any case finds the first as it was written", func(t *testing.T, s switchboard.Store) {
			first := createUser(t, s, "u-alice", "Alice")
			err := s.CreateUser(ctx, &switchboard.User{ID: "u-other", Username: "aLICE", PasswordHash: "x", CreatedAt: at(5)})
			if !errors.Is(err, switchboard.ErrUsernameTaken) {
				t.Fatalf("CreateUser(aLICE) after Alice: err = %v, want one wrapping ErrUsernameTaken", err)
			}
			for _, name := range []string{"Alice", "alice", "ALICE"} {
				got, err := s.UserByName(ctx, name)
				if err != nil {
					t.Fatalf("UserByName(%s): %v", name, err)
				}
				wantUser(t, got, first)
			}
		}},

		{"UserByName of an unknown username returns ErrNotFound", func(t *testing.T, s switchboard.Store) {
			createUser(t, s, "u-alice", "alice")
			_, err := s.UserByName(ctx, "bob")
			wantNotFound(t, "UserByName(bob)", err)
		}},

		{"UserExists is true for a created user and false for an unknown one", func(t *testing.T, s switchboard.Store) {
			createUser(t, s, "u-alice", "alice")
			for id, want := range map[string]bool{"u-alice": true, "u-bob": false, "alice": false} {
				got, err := s.UserExists(ctx, id)
				if err != nil || got != want {
					t.Errorf("UserExists(%s) = %v, %v; want %v, nil", id, got, err, want)
				}
			}
		}},
	}
}
