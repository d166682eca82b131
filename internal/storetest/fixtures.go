package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard"
)

// t0 is the base of every time the suite writes. Milliseconds are the
// precision every store must keep, so the suite's times have some.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123_000_000, time.UTC)

// at returns t0 plus n seconds and n milliseconds.
func at(n int) time.Time {
	return t0.Add(time.Duration(n) * (time.Second + time.Millisecond))
}

func createUser(t testing.TB, s switchboard.Store, id, username string) *switchboard.User {
	t.Helper()
	u := &switchboard.User{ID: id, Username: username, PasswordHash: "$argon2id$" + id, CreatedAt: at(0)}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser(%s): %v", id, err)
	}
	return u
}

func newDevice(userID, id string, created time.Time) *switchboard.Device {
	return &switchboard.Device{
		ID: id, UserID: userID, Name: "device " + id, KEM: "x25519",
		PublicKey: []byte("pk-" + id), SigningKey: []byte("sk-" + id), CreatedAt: created,
	}
}

func createDevice(t testing.TB, s switchboard.Store, userID, id string, created time.Time) *switchboard.Device {
	t.Helper()
	d := newDevice(userID, id, created)
	if err := s.CreateDevice(ctx, d, nil); err != nil {
		t.Fatalf("CreateDevice(%s): %v", id, err)
	}
	return d
}

func createConversation(t testing.TB, s switchboard.Store, id, createdBy string, members ...string) *switchboard.Conversation {
	t.Helper()
	kind := switchboard.KindGroup
	if len(members) == 2 {
		kind = switchboard.KindDirect
	}
	c := &switchboard.Conversation{ID: id, Kind: kind, Title: "title " + id, CreatedBy: createdBy, CreatedAt: at(1), Members: members}
	if err := s.CreateConversation(ctx, c); err != nil {
		t.Fatalf("CreateConversation(%s): %v", id, err)
	}
	return c
}

// world is the cast most tests need: alice (devices a1, a2), bob (b1) and
// carol (c1); alice and bob share the group conversation "conv".
type world struct {
	alice, bob, carol *switchboard.User
	a1, a2, b1, c1    *switchboard.Device
	conv              *switchboard.Conversation
}

func newWorld(t *testing.T, s switchboard.Store) *world {
	t.Helper()
	w := &world{
		alice: createUser(t, s, "u-alice", "alice"),
		bob:   createUser(t, s, "u-bob", "bob"),
		carol: createUser(t, s, "u-carol", "carol"),
	}
	w.a1 = createDevice(t, s, w.alice.ID, "d-a1", at(1))
	w.a2 = createDevice(t, s, w.alice.ID, "d-a2", at(2))
	w.b1 = createDevice(t, s, w.bob.ID, "d-b1", at(1))
	w.c1 = createDevice(t, s, w.carol.ID, "d-c1", at(1))
	w.conv = createConversation(t, s, "conv", w.alice.ID, w.bob.ID, w.alice.ID)
	return w
}

// perDevice is a message from a1 in conv with its own ciphertext for each
// of a2 and b1: "<clientID> for <device>".
func (w *world) perDevice(clientID string) *switchboard.Message {
	return &switchboard.Message{
		ConversationID: w.conv.ID, SenderUserID: w.alice.ID, SenderDeviceID: w.a1.ID, ClientID: clientID,
		SentAt: at(10),
		Ciphertexts: map[string][]byte{
			w.a2.ID: []byte(clientID + " for " + w.a2.ID),
			w.b1.ID: []byte(clientID + " for " + w.b1.ID),
		},
	}
}

func appendMessage(t *testing.T, s switchboard.Store, m *switchboard.Message) *switchboard.Message {
	t.Helper()
	stored, dup, err := s.AppendMessage(ctx, m)
	if err != nil {
		t.Fatalf("AppendMessage(%s): %v", m.ClientID, err)
	}
	if dup {
		t.Fatalf("AppendMessage(%s): duplicate=true for a new client id", m.ClientID)
	}
	return stored
}

func messages(t *testing.T, s switchboard.Store, deviceID, convID string, after int64, limit int) []switchboard.Delivery {
	t.Helper()
	got, err := s.Messages(ctx, deviceID, convID, after, limit)
	if err != nil {
		t.Fatalf("Messages(%s, %s, %d, %d): %v", deviceID, convID, after, limit, err)
	}
	return got
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, switchboard.ErrNotFound) {
		t.Fatalf("%s: err = %v, want one wrapping ErrNotFound", what, err)
	}
}

// wantTime fails unless got is the instant want, in UTC.
func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
	if got.Location() != time.UTC {
		t.Errorf("%s is in %v, want UTC", what, got.Location())
	}
}

func wantUser(t *testing.T, got, want *switchboard.User) {
	t.Helper()
	if got.ID != want.ID || got.Username != want.Username || got.PasswordHash != want.PasswordHash {
		t.Errorf("user = %+v, want %+v", got, want)
	}
	wantTime(t, "user.CreatedAt", got.CreatedAt, want.CreatedAt)
}

func wantDevice(t *testing.T, got, want *switchboard.Device) {
	t.Helper()
	if got.ID != want.ID || got.UserID != want.UserID || got.Name != want.Name || got.KEM != want.KEM ||
		!bytes.Equal(got.PublicKey, want.PublicKey) || !bytes.Equal(got.SigningKey, want.SigningKey) {
		t.Errorf("device = %+v, want %+v", got, want)
	}
	wantTime(t, "device.CreatedAt", got.CreatedAt, want.CreatedAt)
	switch {
	case (got.RevokedAt == nil) != (want.RevokedAt == nil):
		t.Errorf("device.RevokedAt = %v, want %v", got.RevokedAt, want.RevokedAt)
	case got.RevokedAt != nil:
		wantTime(t, "device.RevokedAt", *got.RevokedAt, *want.RevokedAt)
	}
}

func wantConversation(t *testing.T, got, want *switchboard.Conversation, head int64) {
	t.Helper()
	if got.ID != want.ID || got.Kind != want.Kind || got.Title != want.Title || got.CreatedBy != want.CreatedBy {
		t.Errorf("conversation = %+v, want %+v", got, want)
	}
	if got.HeadSeq != head {
		t.Errorf("conversation %s HeadSeq = %d, want %d", got.ID, got.HeadSeq, head)
	}
	if fmt.Sprint(got.Members) != fmt.Sprint(want.Members) {
		t.Errorf("conversation %s Members = %q, want %q", got.ID, got.Members, want.Members)
	}
	wantTime(t, "conversation.CreatedAt", got.CreatedAt, want.CreatedAt)
}

// wantDeliveries compares what a device received with the ciphertexts
// (as strings, for readable failures) it should have received, by seq.
func wantDeliveries(t *testing.T, got []switchboard.Delivery, want map[int64]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d deliveries %v, want %d", len(got), got, len(want))
	}
	for i, d := range got {
		if i > 0 && d.Seq <= got[i-1].Seq {
			t.Fatalf("deliveries not ascending by seq: %d after %d", d.Seq, got[i-1].Seq)
		}
		w, ok := want[d.Seq]
		if !ok || string(d.Ciphertext) != w {
			t.Errorf("delivery seq %d = %q, want %q", d.Seq, d.Ciphertext, w)
		}
	}
}
