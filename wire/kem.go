package wire

// KEM names, as a device registers them (the API's "kem"). e2e implements
// them; docs/crypto.md describes them.
const (
	// KEMX25519 is DHKEM(X25519, HKDF-SHA256), HPKE KEM id 0x0020: a
	// 32-byte public key. The default.
	KEMX25519 = "x25519"
	// KEMMLKEM768X25519 is the hybrid post-quantum ML-KEM-768 + X25519
	// (X-Wing), HPKE KEM id 0x647a: a 1216-byte public key.
	KEMMLKEM768X25519 = "mlkem768x25519"
)
