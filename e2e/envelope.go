package e2e

import (
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/binary"
	"fmt"
)

// Envelope modes: the first byte of an envelope and of its inner payload.
const (
	modeSigned   byte = 0x01 // sealed and signed by the sender device (Seal)
	modeAssisted byte = 0x02 // sealed by the server, unsigned (SealAssisted)
)

// Labels that make this format's info and signatures its own.
const (
	infoLabel = "switchboard/e2e/v1"
	sigLabel  = "switchboard/e2e/v1/signature"
)

const (
	headerLen     = 4   // mode, KEM id (2), client id length
	maxClientID   = 255 // fits its length byte; the protocol allows 64
	maxField      = 1<<16 - 1
	sigLen        = ed25519.SignatureSize
	minSignedIn   = 1 + sigLen // mode, signature, empty plaintext
	minAssistedIn = 1          // mode, empty plaintext
)

// Context is what an envelope is bound to. Sealer and opener must agree on
// every field, or Open fails: the recipient takes them from the message
// frame (conversation, sender.user_id, sender.device_id), from itself
// (RecipientDevice) and from the envelope's header (ClientID, the send's
// "id"). All fields are required, except that Open takes an empty ClientID
// to mean "the one in the envelope" (the message frame does not carry it;
// [Inspect] reads it).
type Context struct {
	Conversation    string // the conversation id (cnv_…)
	SenderUser      string // the sending user's id (usr_…)
	SenderDevice    string // the sending device's id (dev_…)
	ClientID        string // the send's client message id, 1 to 255 bytes
	RecipientDevice string // the device the envelope is sealed to (dev_…)
}

// check reports an empty or oversized field.
func (c *Context) check() error {
	for _, f := range [...]struct{ name, v string }{
		{"Conversation", c.Conversation}, {"SenderUser", c.SenderUser},
		{"SenderDevice", c.SenderDevice}, {"ClientID", c.ClientID},
		{"RecipientDevice", c.RecipientDevice},
	} {
		if f.v == "" || len(f.v) > maxField {
			return fmt.Errorf("%w: %s must be 1 to %d bytes", ErrContext, f.name, maxField)
		}
	}
	if len(c.ClientID) > maxClientID {
		return fmt.Errorf("%w: ClientID must be 1 to %d bytes", ErrContext, maxClientID)
	}
	return nil
}

// appendFields appends the fields, each as a 2-byte big-endian length and
// the bytes, in the order of the struct.
func (c *Context) appendFields(b []byte) []byte {
	for _, v := range [...]string{c.Conversation, c.SenderUser, c.SenderDevice, c.ClientID, c.RecipientDevice} {
		b = binary.BigEndian.AppendUint16(b, uint16(len(v)))
		b = append(b, v...)
	}
	return b
}

func (c *Context) size() int {
	return 10 + len(c.Conversation) + len(c.SenderUser) + len(c.SenderDevice) + len(c.ClientID) + len(c.RecipientDevice)
}

// info is the HPKE info: label || mode || fields.
func info(mode byte, c *Context) []byte {
	b := make([]byte, 0, len(infoLabel)+1+c.size())
	b = append(b, infoLabel...)
	b = append(b, mode)
	return c.appendFields(b)
}

// signedMessage is what the sender device signs: label || fields ||
// plaintext.
func signedMessage(c *Context, plaintext []byte) []byte {
	b := make([]byte, 0, len(sigLabel)+c.size()+len(plaintext))
	b = append(b, sigLabel...)
	b = c.appendFields(b)
	return append(b, plaintext...)
}

// Seal seals plaintext from the sender device to one recipient device,
// whose KEM and public key come from the device directory, and signs it
// with the sender's signing key. c must be complete. It fails with
// ErrUnknownKEM or ErrBadKey for a recipient key it cannot seal to, and
// ErrContext for an incomplete context.
func Seal(sender *Identity, recipientKEM string, recipientPublicKey []byte, c Context, plaintext []byte) ([]byte, error) {
	if !sender.valid() {
		return nil, fmt.Errorf("%w: no sender identity", ErrBadKey)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	inner := make([]byte, 0, minSignedIn+len(plaintext))
	inner = append(inner, modeSigned)
	inner = append(inner, ed25519.Sign(sender.sign, signedMessage(&c, plaintext))...)
	inner = append(inner, plaintext...)
	return seal(modeSigned, recipientKEM, recipientPublicKey, &c, inner)
}

// SealAssisted is the server-assisted path: the node seals a plaintext that
// a client which cannot encrypt sent it, to one recipient device. c names
// the sending user and device and the send's id, as Seal's would. The
// envelope is marked server-sealed and carries no signature; it opens only
// with OpenAssisted.
func SealAssisted(recipientKEM string, recipientPublicKey []byte, c Context, plaintext []byte) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	inner := make([]byte, 0, minAssistedIn+len(plaintext))
	inner = append(inner, modeAssisted)
	inner = append(inner, plaintext...)
	return seal(modeAssisted, recipientKEM, recipientPublicKey, &c, inner)
}

// seal writes the header and the HPKE ciphertext of inner.
func seal(mode byte, kem string, pub []byte, c *Context, inner []byte) ([]byte, error) {
	s, err := suiteByName(kem)
	if err != nil {
		return nil, err
	}
	pk, err := s.kem.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: not a %s public key: %v", ErrBadKey, kem, err)
	}
	ct, err := hpke.Seal(pk, kdf, aead, info(mode, c), inner)
	if err != nil {
		// A low-order X25519 key, the only way a parsed key fails here.
		return nil, fmt.Errorf("%w: sealing to a %s key: %v", ErrBadKey, kem, err)
	}
	out := make([]byte, 0, headerLen+len(c.ClientID)+len(ct))
	out = append(out, mode)
	out = binary.BigEndian.AppendUint16(out, s.id)
	out = append(out, byte(len(c.ClientID)))
	out = append(out, c.ClientID...)
	return append(out, ct...), nil
}

// Open opens an envelope that Seal made for recipient, and checks the
// signature with the sender device's signing key (from the device
// directory). It returns the plaintext, or: ErrMalformed or ErrUnknownKEM
// for bytes that are not an envelope, ErrMode for a server-sealed one (see
// OpenAssisted), ErrContext for an incomplete context, ErrBadKey for a
// signing key of the wrong length, ErrOpen when the envelope was not sealed
// to this recipient in exactly this context or was altered, ErrSignature
// when the sender device did not sign it. c.ClientID may be empty (see
// [Context]).
func Open(recipient *Identity, senderSigningKey ed25519.PublicKey, c Context, envelope []byte) ([]byte, error) {
	if len(senderSigningKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: an Ed25519 signing key is %d bytes, not %d", ErrBadKey, ed25519.PublicKeySize, len(senderSigningKey))
	}
	inner, err := open(modeSigned, recipient, &c, envelope)
	if err != nil {
		return nil, err
	}
	if len(inner) < minSignedIn {
		return nil, fmt.Errorf("%w: inner payload too short", ErrOpen)
	}
	plaintext := inner[minSignedIn:]
	if !ed25519.Verify(senderSigningKey, signedMessage(&c, plaintext), inner[1:minSignedIn]) {
		return nil, ErrSignature
	}
	return plaintext, nil
}

// OpenAssisted opens an envelope that SealAssisted made for recipient. It
// fails like Open, and with ErrMode for an envelope a device signed (open
// that with Open, which checks the signature). What it returns was seen by
// the server and is not proven to come from the claimed sender: show it as
// such.
func OpenAssisted(recipient *Identity, c Context, envelope []byte) ([]byte, error) {
	inner, err := open(modeAssisted, recipient, &c, envelope)
	if err != nil {
		return nil, err
	}
	return inner[minAssistedIn:], nil
}

// open checks the header against the mode, the recipient and c (filling in
// an empty c.ClientID), and returns the decrypted inner payload, whose mode
// byte it has checked.
func open(mode byte, recipient *Identity, c *Context, envelope []byte) ([]byte, error) {
	if !recipient.valid() {
		return nil, fmt.Errorf("%w: no recipient identity", ErrBadKey)
	}
	h, s, body, err := parse(envelope)
	if err != nil {
		return nil, err
	}
	if h.mode != mode {
		if h.mode == modeAssisted {
			return nil, fmt.Errorf("%w: the envelope is server-sealed; use OpenAssisted", ErrMode)
		}
		return nil, fmt.Errorf("%w: the envelope is signed by a device; use Open", ErrMode)
	}
	if s != recipient.suite {
		return nil, fmt.Errorf("%w: sealed to a %s key, the recipient's is %s", ErrOpen, s.name, recipient.suite.name)
	}
	switch {
	case c.ClientID == "":
		c.ClientID = h.ClientID
	case c.ClientID != h.ClientID:
		return nil, fmt.Errorf("%w: the envelope is for another client message id", ErrOpen)
	}
	if err := c.check(); err != nil {
		return nil, err
	}
	inner, err := hpke.Open(recipient.priv, kdf, aead, info(mode, c), body)
	if err != nil {
		return nil, ErrOpen
	}
	if len(inner) == 0 || inner[0] != mode {
		return nil, fmt.Errorf("%w: inner payload of another mode", ErrOpen)
	}
	return inner, nil
}

// Header is the clear part of an envelope.
type Header struct {
	// Assisted is true for an envelope the server sealed (SealAssisted):
	// the server saw its plaintext, and it carries no sender signature.
	Assisted bool
	// KEM names the KEM of the recipient key it is sealed to.
	KEM string
	// ClientID is the sender's client message id (the send's "id"). It is
	// authenticated only once the envelope opens.
	ClientID string
}

// Inspect reads an envelope's header, and checks that the rest is long
// enough to be an envelope of that kind, without a key. It fails with
// ErrMalformed or ErrUnknownKEM.
func Inspect(envelope []byte) (Header, error) {
	h, _, _, err := parse(envelope)
	if err != nil {
		return Header{}, err
	}
	return h.Header, nil
}

type header struct {
	Header
	mode byte
}

// parse splits an envelope into its header and the HPKE part (encapsulated
// key and AEAD ciphertext), checking every length. It must not panic on
// any input: FuzzOpen holds it to that.
func parse(b []byte) (h header, s *kemSuite, body []byte, err error) {
	if len(b) < headerLen {
		return h, nil, nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	h.mode = b[0]
	minInner := 0
	switch h.mode {
	case modeSigned:
		minInner = minSignedIn
	case modeAssisted:
		minInner, h.Assisted = minAssistedIn, true
	default:
		return h, nil, nil, fmt.Errorf("%w: unknown version 0x%02x", ErrMalformed, h.mode)
	}
	s, err = suiteByID(binary.BigEndian.Uint16(b[1:3]))
	if err != nil {
		return h, nil, nil, err
	}
	h.KEM = s.name
	n := int(b[3])
	if n == 0 {
		return h, nil, nil, fmt.Errorf("%w: empty client id", ErrMalformed)
	}
	if len(b) < headerLen+n+s.encLen+aeadOverhead+minInner {
		return h, nil, nil, fmt.Errorf("%w: too short for a %s envelope", ErrMalformed, s.name)
	}
	h.ClientID = string(b[headerLen : headerLen+n])
	return h, s, b[headerLen+n:], nil
}

// Overhead is how many bytes a signed envelope adds to its plaintext, for a
// recipient key of the named KEM and a client id of clientIDLen bytes (the
// server limits the whole envelope, see docs/crypto.md). It is -1 for an
// unknown KEM. A server-sealed envelope is 64 bytes (the signature) smaller.
func Overhead(kem string, clientIDLen int) int {
	s, err := suiteByName(kem)
	if err != nil {
		return -1
	}
	return headerLen + clientIDLen + s.encLen + aeadOverhead + minSignedIn
}
