// Package e2e is switchboard's end-to-end envelope: the one format in which
// a message travels from a sending device to each recipient device, written
// down byte by byte in docs/crypto.md.
//
// An envelope is HPKE (RFC 9180) in base mode, sealed to the recipient
// device's public key with the suite KEM = the device's KEM ([KEMX25519],
// the default, or the hybrid post-quantum [KEMMLKEM768X25519]), KDF =
// HKDF-SHA256 and AEAD = ChaCha20-Poly1305. The HPKE info binds the
// conversation, the sender's user and device, the client message id and the
// recipient device ([Context]). Inside, the plaintext is signed with the
// sender device's Ed25519 key over the same context, so a recipient proves
// which device wrote it: a server that changes the claimed sender, replays
// the envelope to another device, conversation or message id, or alters a
// byte makes [Open] fail.
//
// A device holds an [Identity] (its HPKE private key and its Ed25519
// signing key); it registers [Identity.PublicKey], [Identity.KEM] and
// [Identity.SigningKey] at login, and the server's device directory serves
// them to the other devices. [Seal] and [Open] are the client end-to-end
// path. [SealAssisted] and [OpenAssisted] are the server-assisted path, in
// which the node seals a plaintext handed to it by a client that cannot
// encrypt: such an envelope carries no sender signature, is marked as
// server-sealed in its first byte, and only opens with OpenAssisted, so a
// recipient always knows the server saw the plaintext. [Inspect] reads the
// clear header (mode, KEM, client message id) without a key.
//
// The package uses the standard library only, holds no state, and every
// function is safe for concurrent use. Parsing never panics, whatever the
// input.
package e2e
