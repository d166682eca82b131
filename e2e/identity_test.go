package e2e

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestIdentitySurvivesMarshaling(t *testing.T) {
	for _, kem := range kems {
		t.Run(kem, func(t *testing.T) {
			alice := newParty(t, KEMX25519, "usr_alice", "dev_a1")
			bob := newParty(t, kem, "usr_bob", "dev_b1")
			saved, err := bob.id.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			loaded, err := ParseIdentity(saved)
			if err != nil {
				t.Fatal(err)
			}
			if loaded.KEM() != kem || !bytes.Equal(loaded.PublicKey(), bob.id.PublicKey()) ||
				!bytes.Equal(loaded.SigningKey(), bob.id.SigningKey()) {
				t.Fatal("the loaded identity has other public keys")
			}
			if again, _ := loaded.MarshalBinary(); !bytes.Equal(again, saved) {
				t.Fatal("marshaling is not stable")
			}
			// It opens what was sealed to the original, and signs as it.
			c := ctxFor(alice, bob)
			env := mustSeal(t, alice, bob, c, []byte("hi"))
			if got, err := Open(loaded, alice.id.SigningKey(), c, env); err != nil || string(got) != "hi" {
				t.Fatalf("Open with the loaded identity = %q, %v", got, err)
			}
			back := Context{Conversation: "cnv_1", SenderUser: bob.user, SenderDevice: bob.device,
				ClientID: "msg-2", RecipientDevice: alice.device}
			env, err = Seal(loaded, KEMX25519, alice.id.PublicKey(), back, []byte("yo"))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := Open(alice.id, bob.id.SigningKey(), back, env); err != nil || string(got) != "yo" {
				t.Fatalf("Open of the loaded identity's seal = %q, %v", got, err)
			}
		})
	}
}

func TestParseIdentityRefusesWhatIsNotOne(t *testing.T) {
	id, _ := GenerateIdentity(KEMX25519)
	good, _ := id.MarshalBinary()
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"nothing", nil, ErrMalformed},
		{"another version", append([]byte{9}, good[1:]...), ErrMalformed},
		{"an unknown KEM id", append([]byte{1, 0, 0x10}, good[3:]...), ErrUnknownKEM},
		{"a truncated identity", good[:len(good)-1], ErrMalformed},
		{"a longer identity", append(bytes.Clone(good), 0), ErrMalformed},
		{"a 16-byte private key", append(append([]byte{1, 0, 0x20, 0, 16}, make([]byte, 16)...), good[37:]...), ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Identity
			if err := got.UnmarshalBinary(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("UnmarshalBinary = %v, want %v", err, tt.want)
			}
			if got.valid() {
				t.Fatal("a refused UnmarshalBinary changed the identity")
			}
		})
	}
}

func TestIdentityPrintsNoSecret(t *testing.T) {
	id, _ := GenerateIdentity(KEMX25519)
	saved, _ := id.MarshalBinary()
	secret := fmt.Sprintf("%x", saved[5:37])
	seed := fmt.Sprintf("%x", saved[37:])
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x"} {
		out := fmt.Sprintf(verb, id)
		if strings.Contains(out, secret) || strings.Contains(out, seed) || strings.Contains(fmt.Sprintf("%x", out), secret) {
			t.Errorf("%s printed a secret: %s", verb, out)
		}
	}
	if s := id.String(); !strings.HasPrefix(s, "e2e.Identity(x25519 ") {
		t.Errorf("String = %q", s)
	}
}

func TestZeroIdentityDoesNotPanic(t *testing.T) {
	var id Identity
	if id.KEM() != "" || id.PublicKey() != nil || id.SigningKey() != nil || id.String() != "e2e.Identity(empty)" {
		t.Fatal("a zero identity has keys")
	}
	if _, err := id.MarshalBinary(); !errors.Is(err, ErrBadKey) {
		t.Fatalf("MarshalBinary of a zero identity: %v", err)
	}
	var nilID *Identity
	if nilID.KEM() != "" || nilID.String() != "e2e.Identity(empty)" {
		t.Fatal("a nil identity has keys")
	}
	if _, err := Open(&id, make(ed25519.PublicKey, 32), Context{}, []byte{1}); !errors.Is(err, ErrBadKey) {
		t.Fatalf("Open with a zero identity: %v", err)
	}
}

func TestGenerateIdentityRefusesAnUnknownKEM(t *testing.T) {
	if id, err := GenerateIdentity("rsa"); !errors.Is(err, ErrUnknownKEM) || id != nil {
		t.Fatalf("GenerateIdentity(rsa) = %v, %v", id, err)
	}
}
