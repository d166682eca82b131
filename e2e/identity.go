package e2e

import (
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Identity is one device's secret keys: an HPKE private key, to which
// envelopes for the device are sealed, and an Ed25519 private key, with
// which the device signs what it sends. Make one with [GenerateIdentity]
// when a device is set up, save [Identity.MarshalBinary] somewhere safe (it
// is secret), and load it again with [ParseIdentity]. Its String method
// prints no secret. An Identity is immutable and safe for concurrent use.
type Identity struct {
	suite *kemSuite
	priv  hpke.PrivateKey
	pub   []byte
	sign  ed25519.PrivateKey
}

// GenerateIdentity returns fresh keys for a device, with an HPKE key of the
// named KEM ([KEMX25519] or [KEMMLKEM768X25519]).
func GenerateIdentity(kem string) (*Identity, error) {
	s, err := suiteByName(kem)
	if err != nil {
		return nil, err
	}
	priv, err := s.kem.GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("e2e: generating a %s key: %w", kem, err)
	}
	_, sign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("e2e: generating a signing key: %w", err)
	}
	return &Identity{suite: s, priv: priv, pub: priv.PublicKey().Bytes(), sign: sign}, nil
}

// KEM is the name of the identity's KEM, to register as the device's "kem".
func (id *Identity) KEM() string {
	if !id.valid() {
		return ""
	}
	return id.suite.name
}

// PublicKey is the HPKE public key to register as the device's
// "public_key".
func (id *Identity) PublicKey() []byte {
	if !id.valid() {
		return nil
	}
	return append([]byte(nil), id.pub...)
}

// valid reports whether id was made by GenerateIdentity or ParseIdentity
// (and not declared as a zero Identity).
func (id *Identity) valid() bool { return id != nil && id.suite != nil }

// SigningKey is the Ed25519 public key to register as the device's
// "signing_key".
func (id *Identity) SigningKey() ed25519.PublicKey {
	if !id.valid() {
		return nil
	}
	return append(ed25519.PublicKey(nil), id.sign.Public().(ed25519.PublicKey)...)
}

// String names the KEM and the start of the public key; it never prints a
// secret, so an Identity may be logged by mistake without harm.
func (id *Identity) String() string {
	if !id.valid() {
		return "e2e.Identity(empty)"
	}
	return fmt.Sprintf("e2e.Identity(%s %s…)", id.suite.name, hex.EncodeToString(id.pub[:8]))
}

// GoString is String, for %#v.
func (id *Identity) GoString() string { return id.String() }

// identityVersion is the first byte of a marshaled Identity.
const identityVersion = 0x01

// MarshalBinary encodes the identity's secret keys (docs/crypto.md has the
// layout): keep the result as secret as the keys.
func (id *Identity) MarshalBinary() ([]byte, error) {
	if !id.valid() {
		return nil, fmt.Errorf("%w: empty identity", ErrBadKey)
	}
	k, err := id.priv.Bytes()
	if err != nil {
		return nil, fmt.Errorf("e2e: encoding the %s private key: %w", id.suite.name, err)
	}
	b := make([]byte, 0, 5+len(k)+ed25519.SeedSize)
	b = append(b, identityVersion)
	b = binary.BigEndian.AppendUint16(b, id.suite.id)
	b = binary.BigEndian.AppendUint16(b, uint16(len(k)))
	b = append(b, k...)
	return append(b, id.sign.Seed()...), nil
}

// UnmarshalBinary replaces id with the identity encoded in b by
// MarshalBinary. Bytes that are not such an encoding give ErrMalformed,
// ErrUnknownKEM or ErrBadKey, and leave id unchanged.
func (id *Identity) UnmarshalBinary(b []byte) error {
	if len(b) < 5 || b[0] != identityVersion {
		return fmt.Errorf("%w: not an identity", ErrMalformed)
	}
	s, err := suiteByID(binary.BigEndian.Uint16(b[1:3]))
	if err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint16(b[3:5]))
	if len(b) != 5+n+ed25519.SeedSize {
		return fmt.Errorf("%w: an identity's length does not match its contents", ErrMalformed)
	}
	priv, err := s.kem.NewPrivateKey(b[5 : 5+n])
	if err != nil {
		return fmt.Errorf("%w: not a %s private key: %v", ErrBadKey, s.name, err)
	}
	*id = Identity{
		suite: s,
		priv:  priv,
		pub:   priv.PublicKey().Bytes(),
		sign:  ed25519.NewKeyFromSeed(b[5+n:]),
	}
	return nil
}

// ParseIdentity decodes an identity saved with MarshalBinary.
func ParseIdentity(b []byte) (*Identity, error) {
	id := new(Identity)
	if err := id.UnmarshalBinary(b); err != nil {
		return nil, err
	}
	return id, nil
}
