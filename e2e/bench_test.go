package e2e

import "testing"

// The benchmarks seal and open one 200-byte message, a typical chat line,
// for each KEM. docs/crypto.md keeps the numbers.

func BenchmarkSeal(b *testing.B) {
	for _, kem := range kems {
		b.Run(kem, func(b *testing.B) {
			alice := newParty(b, KEMX25519, "usr_alice", "dev_a1")
			bob := newParty(b, kem, "usr_bob", "dev_b1")
			c := ctxFor(alice, bob)
			pub, pt := bob.id.PublicKey(), make([]byte, 200)
			b.ReportAllocs()
			b.SetBytes(int64(len(pt)))
			for b.Loop() {
				if _, err := Seal(alice.id, kem, pub, c, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, kem := range kems {
		b.Run(kem, func(b *testing.B) {
			alice := newParty(b, KEMX25519, "usr_alice", "dev_a1")
			bob := newParty(b, kem, "usr_bob", "dev_b1")
			c := ctxFor(alice, bob)
			env := mustSeal(b, alice, bob, c, make([]byte, 200))
			sk := alice.id.SigningKey()
			b.ReportAllocs()
			b.SetBytes(200)
			for b.Loop() {
				if _, err := Open(bob.id, sk, c, env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParsePublicKey(b *testing.B) {
	for _, kem := range kems {
		b.Run(kem, func(b *testing.B) {
			id, _ := GenerateIdentity(kem)
			pub := id.PublicKey()
			b.ReportAllocs()
			for b.Loop() {
				if err := ParsePublicKey(kem, pub); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
