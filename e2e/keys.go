package e2e

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"fmt"

	"github.com/switchboard-chat/switchboard/wire"
)

// KEM names, as registered with a device (the API's "kem"); package wire
// names them.
const (
	// KEMX25519 is DHKEM(X25519, HKDF-SHA256), HPKE KEM id 0x0020: a
	// 32-byte public key. The default.
	KEMX25519 = wire.KEMX25519
	// KEMMLKEM768X25519 is the hybrid post-quantum ML-KEM-768 + X25519
	// (X-Wing), HPKE KEM id 0x647a: a 1216-byte public key.
	KEMMLKEM768X25519 = wire.KEMMLKEM768X25519
)

// kemSuite is one KEM this package speaks, with the sizes the envelope
// parser needs.
type kemSuite struct {
	name   string
	id     uint16 // HPKE KEM id, written in envelopes and identities
	kem    hpke.KEM
	encLen int // length of the encapsulated key
	pubLen int // length of a public key
}

var suites = [...]kemSuite{
	{name: KEMX25519, id: 0x0020, kem: hpke.DHKEM(ecdh.X25519()), encLen: 32, pubLen: 32},
	{name: KEMMLKEM768X25519, id: 0x647a, kem: hpke.MLKEM768X25519(), encLen: 1120, pubLen: 1216},
}

// The rest of the suite is fixed by the envelope version.
var (
	kdf  = hpke.HKDFSHA256()
	aead = hpke.ChaCha20Poly1305()
)

const aeadOverhead = 16 // the Poly1305 tag

func suiteByName(name string) (*kemSuite, error) {
	for i := range suites {
		if suites[i].name == name {
			return &suites[i], nil
		}
	}
	return nil, fmt.Errorf("%w %q: use %s or %s", ErrUnknownKEM, name, KEMX25519, KEMMLKEM768X25519)
}

func suiteByID(id uint16) (*kemSuite, error) {
	for i := range suites {
		if suites[i].id == id {
			return &suites[i], nil
		}
	}
	return nil, fmt.Errorf("%w: id 0x%04x", ErrUnknownKEM, id)
}

// lowOrderProbe multiplies a candidate X25519 point: the product is zero,
// which crypto/ecdh refuses, exactly when the point has low order (its
// clamped scalar is a multiple of the cofactor).
var lowOrderProbe, _ = ecdh.X25519().NewPrivateKey([]byte("switchboard/e2e low-order probe!"))

// ParsePublicKey checks that b is a public key of the named KEM, as a login
// must register it: ErrUnknownKEM for another name, ErrBadKey for a key of
// the wrong length, one that does not decode, or an X25519 key (alone or as
// the last 32 bytes of the hybrid key) of low order, to which nothing can be
// sealed. The server calls it on every login.
func ParsePublicKey(kem string, b []byte) error {
	s, err := suiteByName(kem)
	if err != nil {
		return err
	}
	if len(b) != s.pubLen {
		return fmt.Errorf("%w: a %s public key is %d bytes, not %d", ErrBadKey, kem, s.pubLen, len(b))
	}
	if _, err := s.kem.NewPublicKey(b); err != nil {
		return fmt.Errorf("%w: not a %s public key: %v", ErrBadKey, kem, err)
	}
	x, err := ecdh.X25519().NewPublicKey(b[len(b)-32:])
	if err == nil {
		_, err = lowOrderProbe.ECDH(x)
	}
	if err != nil {
		return fmt.Errorf("%w: the X25519 part of the %s public key has low order", ErrBadKey, kem)
	}
	return nil
}

// ParseSigningKey checks that b is an Ed25519 public key as a login must
// register it (32 bytes); otherwise it returns ErrBadKey.
func ParseSigningKey(b []byte) error {
	if len(b) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: an Ed25519 signing key is %d bytes, not %d", ErrBadKey, ed25519.PublicKeySize, len(b))
	}
	return nil
}
