package chat

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hpke"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard"
)

var cheap = Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}

func TestPasswordHash(t *testing.T) {
	h := HashPassword("correct horse", cheap)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not PHC argon2id with the given parameters", h)
	}
	if h2 := HashPassword("correct horse", cheap); h2 == h {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	for _, tc := range []struct {
		name, password, hash string
		ok                   bool
		err                  bool
	}{
		{"the right password verifies", "correct horse", h, true, false},
		{"a wrong password does not", "correct horsf", h, false, false},
		{"a malformed hash is an error", "x", "$argon2id$nope", false, true},
		{"another algorithm is an error", "x", "$bcrypt$v=19$m=1,t=1,p=1$AA$AA", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := VerifyPassword(tc.password, tc.hash)
			if ok != tc.ok || (err != nil) != tc.err {
				t.Fatalf("VerifyPassword = %v, %v; want %v, err %v", ok, err, tc.ok, tc.err)
			}
		})
	}
}

func TestTokensAndIDs(t *testing.T) {
	tok, hash := NewToken()
	if len(tok) != 43 || len(hash) != 32 {
		t.Fatalf("token %d chars, hash %d bytes; want 43 and 32", len(tok), len(hash))
	}
	if string(HashToken(tok)) != string(hash) {
		t.Fatal("HashToken differs from the hash NewToken returned")
	}
	a, b := NewID("dev"), NewID("dev")
	if a == b || !strings.HasPrefix(a, "dev_") || len(a) != 4+26 {
		t.Fatalf("ids %q %q: want distinct dev_ + 26 chars", a, b)
	}
}

func TestDeviceValidate(t *testing.T) {
	x, _ := hpke.DHKEM(ecdh.X25519()).GenerateKey()
	xpub := x.PublicKey().Bytes()
	pq, _ := hpke.MLKEM768X25519().GenerateKey()
	pqpub := pq.PublicKey().Bytes()
	sig := make([]byte, 32)
	for _, tc := range []struct {
		name string
		d    DeviceInfo
		ok   bool
	}{
		{"an x25519 device is valid", DeviceInfo{"phone", "x25519", xpub, sig}, true},
		{"a hybrid post-quantum device is valid", DeviceInfo{"phone", "mlkem768x25519", pqpub, sig}, true},
		{"an empty name is refused", DeviceInfo{"", "x25519", xpub, sig}, false},
		{"a long name is refused", DeviceInfo{strings.Repeat("n", 65), "x25519", xpub, sig}, false},
		{"an unknown kem is refused", DeviceInfo{"phone", "rsa", xpub, sig}, false},
		{"a short public key is refused", DeviceInfo{"phone", "x25519", xpub[:31], sig}, false},
		{"a key of the other kem is refused", DeviceInfo{"phone", "mlkem768x25519", xpub, sig}, false},
		{"a short signing key is refused", DeviceInfo{"phone", "x25519", xpub, sig[:31]}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.d.Validate()
			if (err == nil) != tc.ok {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && sb.ErrorCode(err) != "invalid_device" {
				t.Fatalf("code %q, want invalid_device", sb.ErrorCode(err))
			}
		})
	}
}

func TestMatchDevices(t *testing.T) {
	want := map[string][]byte{"a": nil, "b": nil}
	if err := matchDevices(want, map[string][]byte{"a": {1}, "b": {2}}); err != nil {
		t.Fatalf("exact cover refused: %v", err)
	}
	err := matchDevices(want, map[string][]byte{"b": {2}, "z": {3}, "y": {4}})
	var e *sb.Error
	if !errors.As(err, &e) || e.Code != "devices_mismatch" {
		t.Fatalf("err = %v, want devices_mismatch", err)
	}
	if strings.Join(e.Missing, ",") != "a" || strings.Join(e.Extra, ",") != "y,z" {
		t.Fatalf("missing %v extra %v; want [a] and [y z]", e.Missing, e.Extra)
	}
}

func TestBusMessageRoundTrip(t *testing.T) {
	m := &sb.Message{ConversationID: "cnv_a", Seq: 7, SenderUserID: "usr_a", SenderDeviceID: "dev_a",
		SentAt: time.UnixMilli(1700000000123).UTC(), Ciphertexts: map[string][]byte{"dev_b": {1, 2}, "dev_c": {3}}}
	got, err := DecodeMessage(EncodeMessage(m))
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 7 || !got.SentAt.Equal(m.SentAt) || string(got.Ciphertexts["dev_b"]) != "\x01\x02" || got.SenderDeviceID != "dev_a" {
		t.Fatalf("round trip changed the message: %+v", got)
	}
}

func TestCacheKeepsNoListReadAcrossAChange(t *testing.T) {
	st := &slowStore{release: make(chan struct{}), devices: []sb.Device{{ID: "dev_old", UserID: "usr_a"}}}
	c := newCache(st, 10)
	done := make(chan deviceLists)
	go func() {
		ds, _ := c.activeDevices(context.Background(), []string{"usr_a"})
		done <- ds
	}()
	for st.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	c.forgetDevices("usr_a") // a login lands while the read is in flight
	st.mu.Lock()
	st.devices = []sb.Device{{ID: "dev_old", UserID: "usr_a"}, {ID: "dev_new", UserID: "usr_a"}}
	st.mu.Unlock()
	close(st.release)
	<-done
	ds, _ := c.activeDevices(context.Background(), []string{"usr_a"})
	if ds.count() != 2 {
		t.Fatalf("after the change the cache answers %v: the stale list was kept", ds)
	}
}

// slowStore is a Store whose ActiveDevices waits for release the first time.
type slowStore struct {
	sb.Store
	release chan struct{}
	calls   atomic.Int32
	mu      sync.Mutex
	devices []sb.Device
}

func (s *slowStore) ActiveDevices(ctx context.Context, users ...string) ([]sb.Device, error) {
	s.mu.Lock()
	snapshot := slices.Clone(s.devices) // what the store held when the read began
	s.mu.Unlock()
	if s.calls.Add(1) == 1 {
		<-s.release
	}
	return snapshot, nil
}

func TestBusMessageRoundTripKeepsEveryField(t *testing.T) {
	for _, m := range []*sb.Message{
		{ConversationID: "cnv_a", Seq: 1 << 40, SenderUserID: "usr_a", SenderDeviceID: "dev_a",
			SentAt: time.Unix(1700000000, 123456000).UTC(), Shared: []byte("shared"),
			Ciphertexts: map[string][]byte{"dev_b": nil, "dev_c": nil}},
		{ConversationID: "cnv_b", Seq: 3, SenderUserID: "usr_b", SenderDeviceID: "dev_b",
			SentAt: time.UnixMilli(1).UTC(), Ciphertexts: map[string][]byte{"dev_a": {}, "dev_c": bytes.Repeat([]byte{0xff}, 300)}},
		{ConversationID: "", Seq: 0, Ciphertexts: map[string][]byte{}},
	} {
		got, err := DecodeMessage(EncodeMessage(m))
		if err != nil {
			t.Fatal(err)
		}
		if got.ConversationID != m.ConversationID || got.Seq != m.Seq || got.SenderUserID != m.SenderUserID ||
			got.SenderDeviceID != m.SenderDeviceID || !got.SentAt.Equal(m.SentAt) ||
			(got.Shared == nil) != (m.Shared == nil) || !bytes.Equal(got.Shared, m.Shared) || len(got.Ciphertexts) != len(m.Ciphertexts) {
			t.Fatalf("round trip of %+v gave %+v", m, got)
		}
		for id, ct := range m.Ciphertexts {
			g, ok := got.Ciphertexts[id]
			if !ok || (g == nil) != (ct == nil) || !bytes.Equal(g, ct) {
				t.Fatalf("ciphertext of %s: %q (present %v), want %q", id, g, ok, ct)
			}
		}
	}
}

func TestDecodeMessageRefusesEveryTruncation(t *testing.T) {
	b := EncodeMessage(&sb.Message{ConversationID: "cnv_a", Seq: 9, SenderUserID: "usr_a", SenderDeviceID: "dev_a",
		SentAt: time.Now(), Ciphertexts: map[string][]byte{"dev_b": {1, 2, 3}, "dev_c": nil}})
	for i := range len(b) {
		if _, err := DecodeMessage(b[:i]); err == nil {
			t.Fatalf("the first %d of %d bytes decoded", i, len(b))
		}
	}
	if _, err := DecodeMessage(append(b[:len(b):len(b)], 0)); err == nil {
		t.Fatal("a trailing byte decoded")
	}
	if _, err := DecodeMessage([]byte(`{"c":"cnv_a"}`)); err == nil {
		t.Fatal("JSON decoded as a bus message")
	}
	if _, err := DecodeMessage(append(b[:len(b):len(b)], 'e', 0)); err == nil {
		t.Fatal("an empty event decoded")
	}
}

// An event travels with its JSON, after what a message has: a message's
// encoding is unchanged, and a truncated event is refused.
func TestBusCodecCarriesEvents(t *testing.T) {
	m := &sb.Message{ConversationID: "cnv_a", Seq: 4, SenderUserID: "usr_a", SenderDeviceID: "dev_a",
		SentAt: time.UnixMilli(5).UTC(), Ciphertexts: map[string][]byte{"dev_b": nil, "dev_c": nil}, Event: []byte(`{"kind":"member_added"}`)}
	b := EncodeMessage(m)
	got, err := DecodeMessage(b)
	if err != nil || string(got.Event) != string(m.Event) || len(got.Ciphertexts) != 2 || got.Seq != 4 {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	plain := *m
	plain.Event = nil
	if got, err := DecodeMessage(EncodeMessage(&plain)); err != nil || got.Event != nil {
		t.Fatalf("a message decoded with an event: %+v, %v", got, err)
	}
	for i := len(EncodeMessage(&plain)) + 1; i < len(b); i++ {
		if _, err := DecodeMessage(b[:i]); err == nil {
			t.Fatalf("the first %d of %d bytes decoded", i, len(b))
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add(EncodeMessage(&sb.Message{ConversationID: "c", Seq: 1, Ciphertexts: map[string][]byte{"d": {1}}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMessage(data)
		if err != nil {
			return
		}
		again, err := DecodeMessage(EncodeMessage(m))
		if err != nil || again.Seq != m.Seq || again.ConversationID != m.ConversationID || len(again.Ciphertexts) != len(m.Ciphertexts) {
			t.Fatalf("a decoded message does not survive a round trip: %+v, %v", again, err)
		}
	})
}

// BenchmarkBusMessage500 encodes and decodes a shared message to a
// 500-device group: what the bus costs per message in the fan-out runs.
func BenchmarkBusMessage500(b *testing.B) {
	m := &sb.Message{ConversationID: "cnv_0123456789abcdef", Seq: 12345, SenderUserID: "usr_0123456789abcdef",
		SenderDeviceID: "dev_0123456789abcdef", SentAt: time.Now(), Shared: make([]byte, 200), Ciphertexts: map[string][]byte{}}
	for i := range 500 {
		m.Ciphertexts[fmt.Sprintf("dev_%016x", i)] = nil
	}
	for b.Loop() {
		if _, err := DecodeMessage(EncodeMessage(m)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkActiveDevices1950 reads the cached device lists of a group of
// 1,950 users with 10 devices each (the broadcast run's group): what every
// send into it costs before its recipients are known.
func BenchmarkActiveDevices1950(b *testing.B) {
	st := &slowStore{release: make(chan struct{})}
	close(st.release)
	users := make([]string, 1950)
	for i := range users {
		users[i] = fmt.Sprintf("usr_%016x", i)
		for j := range 10 {
			st.devices = append(st.devices, sb.Device{ID: fmt.Sprintf("dev_%016x_%d", i, j), UserID: users[i],
				KEM: "x25519", PublicKey: make([]byte, 32), SigningKey: make([]byte, 32), CreatedAt: time.Now()})
		}
	}
	c := newCache(st, 10000)
	if _, err := c.activeDevices(context.Background(), users); err != nil { // fills the cache
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := c.activeDevices(context.Background(), users); err != nil {
			b.Fatal(err)
		}
	}
}
