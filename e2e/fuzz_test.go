package e2e

import (
	"bytes"
	"crypto/ed25519"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The seed corpus of FuzzOpen, testdata/fuzz/FuzzOpen, holds envelopes
// sealed to parties whose keys are derived from fixed bytes. They are also
// golden vectors: TestGoldenEnvelopesOpen keeps them opening, so the format
// cannot change by accident. `go test -run TestGoldenEnvelopesOpen
// -update-golden` writes new ones (only for a new format version).
var updateGolden = flag.Bool("update-golden", false, "rewrite the golden envelopes in testdata/fuzz/FuzzOpen")

const goldenDir = "testdata/fuzz/FuzzOpen"

var goldenText = []byte("hello, golden")

type fixture struct {
	alice, bobX, bobH party
}

func newFixture(t testing.TB) *fixture {
	return &fixture{
		alice: fixedParty(t, KEMX25519, "usr_alice", "dev_a1", 1),
		bobX:  fixedParty(t, KEMX25519, "usr_bob", "dev_b1", 2),
		bobH:  fixedParty(t, KEMMLKEM768X25519, "usr_bob", "dev_b1", 3),
	}
}

// fixedParty derives a party's keys from n.
func fixedParty(t testing.TB, kem, user, device string, n byte) party {
	t.Helper()
	s, err := suiteByName(kem)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := s.kem.DeriveKeyPair(bytes.Repeat([]byte{n}, 32))
	if err != nil {
		t.Fatal(err)
	}
	sign := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{n}, ed25519.SeedSize))
	return party{id: &Identity{suite: s, priv: priv, pub: priv.PublicKey().Bytes(), sign: sign}, user: user, device: device}
}

// golden is one golden envelope: its file name says what it is.
type golden struct {
	name     string
	bob      party
	assisted bool
	env      []byte
}

func (fx *fixture) goldens() []golden {
	return []golden{
		{name: "signed-x25519", bob: fx.bobX},
		{name: "assisted-x25519", bob: fx.bobX, assisted: true},
		{name: "signed-mlkem768x25519", bob: fx.bobH},
		{name: "assisted-mlkem768x25519", bob: fx.bobH, assisted: true},
	}
}

// loadGoldens reads the golden envelopes.
func (fx *fixture) loadGoldens(t testing.TB) []golden {
	t.Helper()
	gs := fx.goldens()
	for i := range gs {
		b, err := os.ReadFile(filepath.Join(goldenDir, gs[i].name))
		if err != nil {
			t.Fatal(err)
		}
		body, ok := strings.CutPrefix(string(b), "go test fuzz v1\n[]byte(")
		body, ok2 := strings.CutSuffix(body, ")\n")
		q, err := strconv.Unquote(body)
		if !ok || !ok2 || err != nil {
			t.Fatalf("%s: not a fuzz corpus file of one []byte", gs[i].name)
		}
		gs[i].env = []byte(q)
	}
	return gs
}

func TestGoldenEnvelopesOpen(t *testing.T) {
	fx := newFixture(t)
	if *updateGolden {
		for _, g := range fx.goldens() {
			c := ctxFor(fx.alice, g.bob)
			var env []byte
			var err error
			if g.assisted {
				env, err = SealAssisted(g.bob.id.KEM(), g.bob.id.PublicKey(), c, goldenText)
			} else {
				env, err = Seal(fx.alice.id, g.bob.id.KEM(), g.bob.id.PublicKey(), c, goldenText)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(goldenDir, 0o755); err != nil {
				t.Fatal(err)
			}
			file := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", env)
			if err := os.WriteFile(filepath.Join(goldenDir, g.name), []byte(file), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, g := range fx.loadGoldens(t) {
		t.Run(g.name+" still opens", func(t *testing.T) {
			c := ctxFor(fx.alice, g.bob)
			c.ClientID = ""
			var pt []byte
			var err error
			if g.assisted {
				pt, err = OpenAssisted(g.bob.id, c, g.env)
			} else {
				pt, err = Open(g.bob.id, fx.alice.id.SigningKey(), c, g.env)
			}
			if err != nil || !bytes.Equal(pt, goldenText) {
				t.Fatalf("opened to %q, %v", pt, err)
			}
		})
	}
}

// FuzzOpen feeds arbitrary bytes to Inspect, Open and OpenAssisted:
// nothing may panic, and nothing but an untouched golden envelope may open.
func FuzzOpen(f *testing.F) {
	fx := newFixture(f)
	gs := fx.loadGoldens(f)
	for _, g := range gs {
		f.Add(g.env[:len(g.env)/2])
		f.Add(g.env[:headerLen+5])
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 0, 0x20, 0xff})
	f.Add([]byte{2, 0x64, 0x7a, 1, 'x'})
	f.Fuzz(func(t *testing.T, env []byte) {
		_, herr := Inspect(env)
		for _, bob := range []party{fx.bobX, fx.bobH} {
			c := ctxFor(fx.alice, bob)
			c.ClientID = ""
			pt, err := Open(bob.id, fx.alice.id.SigningKey(), c, env)
			apt, aerr := OpenAssisted(bob.id, c, env)
			if err != nil && aerr != nil {
				continue
			}
			if herr != nil {
				t.Fatalf("Inspect refused (%v) what opened", herr)
			}
			golden := false
			for _, g := range gs {
				golden = golden || bytes.Equal(g.env, env)
			}
			if !golden || !bytes.Equal(append(pt, apt...), goldenText) {
				t.Fatalf("an envelope that is no golden one opened to %q %q", pt, apt)
			}
		}
	})
}

// FuzzParseIdentity: no input panics, and what parses marshals back to as
// many bytes.
func FuzzParseIdentity(f *testing.F) {
	for _, kem := range kems {
		id, _ := GenerateIdentity(kem)
		b, _ := id.MarshalBinary()
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0x20, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ParseIdentity(b)
		if err != nil {
			return
		}
		again, err := id.MarshalBinary()
		if err != nil {
			t.Fatalf("a parsed identity does not marshal: %v", err)
		}
		if len(again) != len(b) {
			t.Fatalf("marshaled back to %d bytes, from %d", len(again), len(b))
		}
	})
}
