package e2e

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
)

var kems = []string{KEMX25519, KEMMLKEM768X25519}

// party is a device in the tests: its identity and its ids.
type party struct {
	id     *Identity
	user   string
	device string
}

func newParty(t testing.TB, kem, user, device string) party {
	t.Helper()
	id, err := GenerateIdentity(kem)
	if err != nil {
		t.Fatal(err)
	}
	return party{id: id, user: user, device: device}
}

// ctxFor is the context of a message from one party to another.
func ctxFor(from, to party) Context {
	return Context{Conversation: "cnv_1", SenderUser: from.user, SenderDevice: from.device,
		ClientID: "msg-1", RecipientDevice: to.device}
}

func mustSeal(t testing.TB, from, to party, c Context, pt []byte) []byte {
	t.Helper()
	env, err := Seal(from.id, to.id.KEM(), to.id.PublicKey(), c, pt)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return env
}

func TestSealThenOpenReturnsThePlaintext(t *testing.T) {
	for _, kem := range kems {
		for _, pt := range [][]byte{[]byte("hello, bob"), {}, bytes.Repeat([]byte{0xab}, 64<<10)} {
			t.Run(kem, func(t *testing.T) {
				alice := newParty(t, KEMX25519, "usr_alice", "dev_a1")
				bob := newParty(t, kem, "usr_bob", "dev_b1")
				c := ctxFor(alice, bob)
				env := mustSeal(t, alice, bob, c, pt)

				got, err := Open(bob.id, alice.id.SigningKey(), c, env)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if !bytes.Equal(got, pt) {
					t.Fatalf("Open = %q, want %q", got, pt)
				}
				// The recipient does not get the client id in the frame:
				// an empty one means the envelope's.
				c.ClientID = ""
				if got, err := Open(bob.id, alice.id.SigningKey(), c, env); err != nil || !bytes.Equal(got, pt) {
					t.Fatalf("Open without ClientID = %q, %v", got, err)
				}
				h, err := Inspect(env)
				if err != nil || h != (Header{KEM: kem, ClientID: "msg-1"}) {
					t.Fatalf("Inspect = %+v, %v", h, err)
				}
				if over := len(env) - len(pt); over != Overhead(kem, len("msg-1")) {
					t.Errorf("overhead %d bytes, Overhead says %d", over, Overhead(kem, len("msg-1")))
				}
			})
		}
	}
}

func TestSealIsRandomized(t *testing.T) {
	alice := newParty(t, KEMX25519, "usr_alice", "dev_a1")
	bob := newParty(t, KEMX25519, "usr_bob", "dev_b1")
	c := ctxFor(alice, bob)
	if a, b := mustSeal(t, alice, bob, c, []byte("x")), mustSeal(t, alice, bob, c, []byte("x")); bytes.Equal(a, b) {
		t.Fatal("two seals of the same message are equal")
	}
}

func TestOpenRefuses(t *testing.T) {
	for _, kem := range kems {
		alice := newParty(t, KEMX25519, "usr_alice", "dev_a1")
		bob := newParty(t, kem, "usr_bob", "dev_b1")
		bob2 := newParty(t, kem, "usr_bob", "dev_b2")
		mallory := newParty(t, KEMX25519, "usr_mallory", "dev_m1")
		other := newParty(t, otherKEM(kem), "usr_bob", "dev_b3")
		pt := []byte("meet at noon")
		c := ctxFor(alice, bob)
		env := mustSeal(t, alice, bob, c, pt)

		tests := []struct {
			name string
			open func() ([]byte, error)
			want error
		}{
			{"a server that claims another sender device", func() ([]byte, error) {
				c := c
				c.SenderDevice = "dev_a2"
				return Open(bob.id, alice.id.SigningKey(), c, env)
			}, ErrOpen},
			{"a server that claims another sender user", func() ([]byte, error) {
				c := c
				c.SenderUser = "usr_mallory"
				return Open(bob.id, alice.id.SigningKey(), c, env)
			}, ErrOpen},
			{"a server that delivers it as from mallory's device, with mallory's key", func() ([]byte, error) {
				c := c
				c.SenderUser, c.SenderDevice = mallory.user, mallory.device
				return Open(bob.id, mallory.id.SigningKey(), c, env)
			}, ErrOpen},
			{"a directory that serves another signing key for the sender", func() ([]byte, error) {
				return Open(bob.id, mallory.id.SigningKey(), c, env)
			}, ErrSignature},
			{"mallory sealing in alice's name", func() ([]byte, error) {
				forged := mustSeal(t, mallory, bob, c, []byte("send money"))
				return Open(bob.id, alice.id.SigningKey(), c, forged)
			}, ErrSignature},
			{"another device of the recipient", func() ([]byte, error) {
				c := c
				c.RecipientDevice = bob2.device
				return Open(bob2.id, alice.id.SigningKey(), c, env)
			}, ErrOpen},
			{"the right key under another recipient device id", func() ([]byte, error) {
				c := c
				c.RecipientDevice = bob2.device
				return Open(bob.id, alice.id.SigningKey(), c, env)
			}, ErrOpen},
			{"a recipient that re-seals the signed payload to another device", func() ([]byte, error) {
				inner, err := open(modeSigned, bob.id, &Context{Conversation: c.Conversation, SenderUser: c.SenderUser,
					SenderDevice: c.SenderDevice, RecipientDevice: c.RecipientDevice}, env)
				if err != nil {
					return nil, err
				}
				c2 := c
				c2.RecipientDevice = bob2.device
				replayed, err := seal(modeSigned, bob2.id.KEM(), bob2.id.PublicKey(), &c2, inner)
				if err != nil {
					return nil, err
				}
				return Open(bob2.id, alice.id.SigningKey(), c2, replayed)
			}, ErrSignature},
			{"another conversation", func() ([]byte, error) {
				c := c
				c.Conversation = "cnv_2"
				return Open(bob.id, alice.id.SigningKey(), c, env)
			}, ErrOpen},
			{"another client id", func() ([]byte, error) {
				c := c
				c.ClientID = "msg-2"
				return Open(bob.id, alice.id.SigningKey(), c, env)
			}, ErrOpen},
			{"the client id changed in the header", func() ([]byte, error) {
				b := bytes.Clone(env)
				b[headerLen] ^= 1
				c := c
				c.ClientID = ""
				return Open(bob.id, alice.id.SigningKey(), c, b)
			}, ErrOpen},
			{"a key of the other KEM", func() ([]byte, error) {
				c := c
				c.RecipientDevice = other.device
				return Open(other.id, alice.id.SigningKey(), c, env)
			}, ErrOpen},
			{"OpenAssisted on a signed envelope", func() ([]byte, error) {
				return OpenAssisted(bob.id, c, env)
			}, ErrMode},
			{"a signing key of the wrong length", func() ([]byte, error) {
				return Open(bob.id, alice.id.SigningKey()[:31], c, env)
			}, ErrBadKey},
			{"no recipient identity", func() ([]byte, error) {
				return Open(nil, alice.id.SigningKey(), c, env)
			}, ErrBadKey},
			{"an incomplete context", func() ([]byte, error) {
				c := c
				c.Conversation = ""
				return Open(bob.id, alice.id.SigningKey(), c, env)
			}, ErrContext},
			{"an empty envelope", func() ([]byte, error) {
				return Open(bob.id, alice.id.SigningKey(), c, nil)
			}, ErrMalformed},
			{"an unknown version", func() ([]byte, error) {
				b := bytes.Clone(env)
				b[0] = 0x7f
				return Open(bob.id, alice.id.SigningKey(), c, b)
			}, ErrMalformed},
			{"an unknown KEM id", func() ([]byte, error) {
				b := bytes.Clone(env)
				b[1], b[2] = 0x00, 0x10 // DHKEM(P-256)
				return Open(bob.id, alice.id.SigningKey(), c, b)
			}, ErrUnknownKEM},
		}
		for _, tt := range tests {
			t.Run(kem+"/"+tt.name+" fails", func(t *testing.T) {
				got, err := tt.open()
				if !errors.Is(err, tt.want) {
					t.Fatalf("got %q, %v; want %v", got, err, tt.want)
				}
				if got != nil {
					t.Fatalf("plaintext %q returned with the error", got)
				}
			})
		}

		t.Run(kem+"/every flipped bit fails", func(t *testing.T) {
			for i := 0; i < len(env); i++ {
				for bit := range 8 {
					b := bytes.Clone(env)
					b[i] ^= 1 << bit
					if got, err := Open(bob.id, alice.id.SigningKey(), c, b); err == nil {
						t.Fatalf("byte %d bit %d flipped: opened to %q", i, bit, got)
					}
				}
				if kem == KEMMLKEM768X25519 && i > 64 && i < len(env)-128 {
					i += 37 // decapsulating is slower: sample the middle of the encapsulated key
				}
			}
		})
		t.Run(kem+"/every truncation and extension fails", func(t *testing.T) {
			for n := range len(env) {
				if _, err := Open(bob.id, alice.id.SigningKey(), c, env[:n]); err == nil {
					t.Fatalf("truncated to %d bytes: opened", n)
				}
			}
			if _, err := Open(bob.id, alice.id.SigningKey(), c, append(bytes.Clone(env), 0)); !errors.Is(err, ErrOpen) {
				t.Fatalf("one byte appended: %v", err)
			}
		})
	}
}

func otherKEM(kem string) string {
	if kem == KEMX25519 {
		return KEMMLKEM768X25519
	}
	return KEMX25519
}

func TestAssistedEnvelopes(t *testing.T) {
	for _, kem := range kems {
		t.Run(kem, func(t *testing.T) {
			alice := newParty(t, KEMX25519, "usr_alice", "dev_a1")
			bob := newParty(t, kem, "usr_bob", "dev_b1")
			c := ctxFor(alice, bob)
			pt := []byte("from a client that cannot encrypt")
			env, err := SealAssisted(kem, bob.id.PublicKey(), c, pt)
			if err != nil {
				t.Fatal(err)
			}
			if h, err := Inspect(env); err != nil || !h.Assisted || h.ClientID != c.ClientID || h.KEM != kem {
				t.Fatalf("Inspect = %+v, %v", h, err)
			}
			if got, err := OpenAssisted(bob.id, c, env); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("OpenAssisted = %q, %v", got, err)
			}
			if got, err := Open(bob.id, alice.id.SigningKey(), c, env); !errors.Is(err, ErrMode) {
				t.Fatalf("Open of a server-sealed envelope = %q, %v; want ErrMode", got, err)
			}
			c2 := c
			c2.SenderDevice = "dev_a2"
			if _, err := OpenAssisted(bob.id, c2, env); !errors.Is(err, ErrOpen) {
				t.Fatalf("OpenAssisted as from another device: %v; want ErrOpen", err)
			}
			// Changing the mode byte cannot turn one kind into the other.
			b := bytes.Clone(env)
			b[0] = modeSigned
			if _, err := Open(bob.id, alice.id.SigningKey(), c, b); err == nil {
				t.Fatal("a server-sealed envelope relabeled as signed opened")
			}
		})
	}
}

func TestSealRefuses(t *testing.T) {
	alice := newParty(t, KEMX25519, "usr_alice", "dev_a1")
	bob := newParty(t, KEMX25519, "usr_bob", "dev_b1")
	c := ctxFor(alice, bob)
	tests := []struct {
		name string
		kem  string
		pub  []byte
		c    func(Context) Context
		from *Identity
		want error
	}{
		{name: "an unknown KEM", kem: "p256", pub: bob.id.PublicKey(), want: ErrUnknownKEM},
		{name: "an empty KEM", kem: "", pub: bob.id.PublicKey(), want: ErrUnknownKEM},
		{name: "a short key", kem: KEMX25519, pub: bob.id.PublicKey()[:31], want: ErrBadKey},
		{name: "an x25519 key named as hybrid", kem: KEMMLKEM768X25519, pub: bob.id.PublicKey(), want: ErrBadKey},
		{name: "a low-order key", kem: KEMX25519, pub: make([]byte, 32), want: ErrBadKey},
		{name: "no sender identity", kem: KEMX25519, pub: bob.id.PublicKey(), from: &Identity{}, want: ErrBadKey},
		{name: "an empty recipient device", kem: KEMX25519, pub: bob.id.PublicKey(),
			c: func(c Context) Context { c.RecipientDevice = ""; return c }, want: ErrContext},
		{name: "an empty client id", kem: KEMX25519, pub: bob.id.PublicKey(),
			c: func(c Context) Context { c.ClientID = ""; return c }, want: ErrContext},
		{name: "a client id over 255 bytes", kem: KEMX25519, pub: bob.id.PublicKey(),
			c: func(c Context) Context { c.ClientID = strings.Repeat("x", 256); return c }, want: ErrContext},
		{name: "a conversation id over 65535 bytes", kem: KEMX25519, pub: bob.id.PublicKey(),
			c: func(c Context) Context { c.Conversation = strings.Repeat("x", 1<<16); return c }, want: ErrContext},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			cc := c
			if tt.c != nil {
				cc = tt.c(c)
			}
			from := alice.id
			if tt.from != nil {
				from = tt.from
			}
			if env, err := Seal(from, tt.kem, tt.pub, cc, []byte("x")); !errors.Is(err, tt.want) || env != nil {
				t.Fatalf("Seal = %x, %v; want %v", env, err, tt.want)
			}
			if tt.from == nil {
				if env, err := SealAssisted(tt.kem, tt.pub, cc, []byte("x")); !errors.Is(err, tt.want) || env != nil {
					t.Fatalf("SealAssisted = %x, %v; want %v", env, err, tt.want)
				}
			}
		})
	}
}

func TestInspectRefusesWhatIsNotAnEnvelope(t *testing.T) {
	for _, b := range [][]byte{nil, {1}, {1, 0, 0x20}, {1, 0, 0x20, 0}, {1, 0, 0x20, 5, 'a'}, {2, 0, 0x20, 1, 'a', 1, 2, 3}} {
		if h, err := Inspect(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("Inspect(%x) = %+v, %v; want ErrMalformed", b, h, err)
		}
	}
}

func TestOpenedPlaintextIsTheCallers(t *testing.T) {
	alice := newParty(t, KEMX25519, "usr_alice", "dev_a1")
	bob := newParty(t, KEMX25519, "usr_bob", "dev_b1")
	c := ctxFor(alice, bob)
	pt := []byte("abc")
	env := mustSeal(t, alice, bob, c, pt)
	pt[0] = 'z' // Seal kept no reference
	got, err := Open(bob.id, ed25519.PublicKey(alice.id.SigningKey()), c, env)
	if err != nil || string(got) != "abc" {
		t.Fatalf("Open = %q, %v", got, err)
	}
}
