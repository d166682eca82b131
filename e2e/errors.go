package e2e

import (
	"errors"
	"fmt"
)

// Errors returned by this package, to be tested with errors.Is. Details are
// wrapped around them.
var (
	// ErrUnknownKEM: a KEM name other than KEMX25519 and KEMMLKEM768X25519,
	// or an envelope whose KEM id is not one of theirs.
	ErrUnknownKEM = errors.New("e2e: unknown kem")
	// ErrBadKey: a public, private or signing key that does not parse for
	// its algorithm (wrong length, not a valid point, a low-order X25519
	// point).
	ErrBadKey = errors.New("e2e: bad key")
	// ErrContext: a Context field is empty or too long.
	ErrContext = errors.New("e2e: bad context")
	// ErrMalformed: the bytes are not an envelope (or not an identity): too
	// short, an unknown version, inconsistent lengths.
	ErrMalformed = errors.New("e2e: malformed envelope")
	// ErrMode: a signed envelope given to OpenAssisted, or a server-sealed
	// one given to Open.
	ErrMode = errors.New("e2e: wrong envelope mode")
	// ErrOpen: the envelope is well formed but does not open for this
	// recipient in this context: another recipient key, another
	// conversation, sender, client id or recipient device, or a changed
	// byte (the AEAD cannot tell which).
	ErrOpen = errors.New("e2e: envelope does not open")
	// ErrSignature: the envelope decrypted but its sender signature does not
	// verify with the sender device's signing key. errors.Is(err, ErrOpen)
	// holds too.
	ErrSignature = fmt.Errorf("%w: bad sender signature", ErrOpen)
)
