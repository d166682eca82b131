package e2e

import (
	"bytes"
	"errors"
	"testing"
)

func TestParsePublicKey(t *testing.T) {
	x, _ := GenerateIdentity(KEMX25519)
	h, _ := GenerateIdentity(KEMMLKEM768X25519)
	lowOrder := func(b []byte) []byte { // the hybrid key with a low-order X25519 part
		b = bytes.Clone(b)
		copy(b[len(b)-32:], make([]byte, 32))
		return b
	}
	one := append([]byte{1}, make([]byte, 31)...) // the point of order 4... or 1: u = 1
	tests := []struct {
		name string
		kem  string
		key  []byte
		want error
	}{
		{"an x25519 key", KEMX25519, x.PublicKey(), nil},
		{"an mlkem768x25519 key", KEMMLKEM768X25519, h.PublicKey(), nil},
		{"an unknown KEM name", "X25519", x.PublicKey(), ErrUnknownKEM},
		{"an empty KEM name", "", x.PublicKey(), ErrUnknownKEM},
		{"an empty key", KEMX25519, nil, ErrBadKey},
		{"a 31-byte x25519 key", KEMX25519, x.PublicKey()[:31], ErrBadKey},
		{"a 33-byte x25519 key", KEMX25519, append(x.PublicKey(), 0), ErrBadKey},
		{"a hybrid key named x25519", KEMX25519, h.PublicKey(), ErrBadKey},
		{"an x25519 key named mlkem768x25519", KEMMLKEM768X25519, x.PublicKey(), ErrBadKey},
		{"a truncated hybrid key", KEMMLKEM768X25519, h.PublicKey()[:1215], ErrBadKey},
		{"the all-zero x25519 point", KEMX25519, make([]byte, 32), ErrBadKey},
		{"the x25519 point u=1", KEMX25519, one, ErrBadKey},
		{"a hybrid key whose x25519 part has low order", KEMMLKEM768X25519, lowOrder(h.PublicKey()), ErrBadKey},
		{"a hybrid key whose ML-KEM part is out of range", KEMMLKEM768X25519, bytes.Repeat([]byte{0xff}, 1216), ErrBadKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ParsePublicKey(tt.kem, tt.key); !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("ParsePublicKey = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParseSigningKey(t *testing.T) {
	x, _ := GenerateIdentity(KEMX25519)
	if err := ParseSigningKey(x.SigningKey()); err != nil {
		t.Fatalf("a real signing key: %v", err)
	}
	for _, b := range [][]byte{nil, make([]byte, 31), make([]byte, 33), make([]byte, 64)} {
		if err := ParseSigningKey(b); !errors.Is(err, ErrBadKey) {
			t.Errorf("%d bytes: %v, want ErrBadKey", len(b), err)
		}
	}
}
