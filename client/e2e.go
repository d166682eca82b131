package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-chat/switchboard/e2e"
)

// LoginIdentity logs in like [Client.Login], creating a device named name
// that registers id's KEM, public key and signing key.
func (c *Client) LoginIdentity(ctx context.Context, username, password, name string, id *e2e.Identity) (*Session, error) {
	if id.KEM() == "" {
		return nil, fmt.Errorf("client: LoginIdentity: %w: empty identity", e2e.ErrBadKey)
	}
	return c.Login(ctx, username, password, DeviceInfo{
		Name: name, KEM: id.KEM(), PublicKey: id.PublicKey(), SigningKey: id.SigningKey(),
	})
}

// Errors of [Secure], found in a [DecryptError] or returned by Send.
var (
	// ErrUnknownDevice: a message's sender device is not, or no longer, in
	// its user's device list, and its signing key was never seen, so the
	// message cannot be verified.
	ErrUnknownDevice = errors.New("client: sender device not in the device directory")
	// ErrAssistedRefused: a server-sealed message while
	// SecureOptions.RefuseAssisted is set.
	ErrAssistedRefused = errors.New("client: server-sealed message refused")
	// ErrIdentityMismatch: the device directory lists this device with
	// other keys than the Identity given to NewSecure.
	ErrIdentityMismatch = errors.New("client: the identity's keys are not the ones this device registered")
)

// SecureOptions configures [NewSecure]. The zero value is the default.
type SecureOptions struct {
	// RefuseAssisted makes Open fail with ErrAssistedRefused for
	// server-sealed envelopes (sent in plaintext by a client that cannot
	// encrypt, sealed by the server). By default they open, with
	// Received.Assisted set.
	RefuseAssisted bool
}

// Received is a message opened by [Secure].
type Received struct {
	Conversation   string
	Seq            int64
	SenderUserID   string
	SenderDeviceID string
	TS             time.Time

	// ClientID is the id the sender gave the message, bound into the
	// envelope. A server that delivers one envelope twice under two seqs
	// is caught by remembering (SenderDeviceID, ClientID).
	ClientID  string
	Plaintext []byte

	// Assisted is true for a message the server sealed: its sender sent it
	// in plaintext, so the server saw it, and nothing proves which device
	// sent it. Show such messages as not end-to-end encrypted.
	Assisted bool
	// Event is set for a system event (a membership change, a missed
	// call), which carries no Plaintext.
	Event *Event
}

// membersChanged drops the cached members of a conversation whose members
// changed, so that the next send seals for the new ones.
func (x *Secure) membersChanged(conversation string, e *Event) {
	switch e.Kind {
	case EventMemberAdded, EventMemberRemoved, EventMemberLeft:
		x.mu.Lock()
		x.gen++
		delete(x.members, conversation)
		x.mu.Unlock()
	}
}

// DecryptError is a message that arrived but did not open. errors.Is(err,
// e2e.ErrOpen) means it never will (altered, forged, or not for this
// device); other causes (fetching the device directory, say) may pass, and
// [Secure.Open] may be tried again with Message.
type DecryptError struct {
	Message Message
	Err     error
}

func (e *DecryptError) Error() string {
	return fmt.Sprintf("client: message %s/%d from %s: %v", e.Message.Conversation, e.Message.Seq, e.Message.SenderDeviceID, e.Err)
}

func (e *DecryptError) Unwrap() error { return e.Err }

// Secure is the end-to-end path of the SDK: it seals each message for every
// recipient device with the e2e envelope (docs/crypto.md) and opens what
// arrives. It keeps, for the life of the Secure, the members of each
// conversation and the device list of each user it needed, drops a user's
// list when the server pushes devices_changed, and refreshes what a
// devices_mismatch shows stale. It remembers every device's signing key it
// has seen, so messages from a device revoked since still verify. It is
// safe for concurrent use.
type Secure struct {
	sess *Session
	conn *Conn
	id   *e2e.Identity
	opts SecureOptions

	mu      sync.Mutex
	members map[string][]string  // per conversation
	devices map[string][]Device  // active devices, per user
	keys    map[string]deviceKey // every device seen, by id; never dropped
	gen     uint64               // bumped whenever cached device lists are dropped
	events  <-chan string        // conn.DevicesChanged, nil once closed
}

// deviceKey is what the directory said about a device when first seen.
type deviceKey struct {
	user    string
	signing []byte
}

// NewSecure returns the end-to-end path for the device of s, whose secret
// keys are id (the identity it logged in with, see
// [Client.LoginIdentity]). conn is the device's connection; it may be nil,
// and then Send uses [Session.SendHTTP] and only Open works for receiving
// (e.g. on history from [Session.Messages]). Secure reads the Conn's
// Messages and DevicesChanged channels: do not read them elsewhere.
func NewSecure(s *Session, conn *Conn, id *e2e.Identity, opts SecureOptions) (*Secure, error) {
	switch {
	case s == nil || s.client == nil:
		return nil, errUnbound
	case id.KEM() == "":
		return nil, fmt.Errorf("client: NewSecure: %w: empty identity", e2e.ErrBadKey)
	case conn != nil && conn.token != s.Token:
		return nil, errors.New("client: NewSecure: the Conn belongs to another session")
	}
	x := &Secure{
		sess: s, conn: conn, id: id, opts: opts,
		members: make(map[string][]string),
		devices: make(map[string][]Device),
		keys:    make(map[string]deviceKey),
	}
	if conn != nil {
		x.events = conn.DevicesChanged()
	}
	return x, nil
}

// Send seals plaintext for every active device of every member of the
// conversation except this one, and sends it with a random id. See SendID.
func (x *Secure) Send(ctx context.Context, conversation string, plaintext []byte) (Sent, error) {
	return x.SendID(ctx, conversation, "", plaintext)
}

// SendID is Send with the message's client id (1 to 64 bytes; empty picks
// a random one). Sending again with the same id after an error or a ctx
// that ended stores the message at most once. If the server answers
// devices_mismatch, SendID refreshes what is stale (the conversation's
// members and the device lists concerned) and tries once more, with the
// same id; a second mismatch is returned as the *Error.
func (x *Secure) SendID(ctx context.Context, conversation, id string, plaintext []byte) (Sent, error) {
	return x.send(ctx, conversation, id, plaintext, nil)
}

// send is SendID naming attachments in the send frame.
func (x *Secure) send(ctx context.Context, conversation, id string, plaintext []byte, attachments []string) (Sent, error) {
	if id == "" {
		id = newID()
	}
	for retried := false; ; retried = true {
		x.drainEvents()
		req, err := x.seal(ctx, conversation, id, plaintext)
		if err != nil {
			return Sent{}, err
		}
		req.Attachments = attachments
		var sent Sent
		if x.conn != nil {
			sent, err = x.conn.Send(ctx, req)
		} else {
			sent, err = x.sess.SendHTTP(ctx, req)
		}
		var e *Error
		if retried || !errors.As(err, &e) || e.Code != CodeDevicesMismatch {
			return sent, err
		}
		x.forgetStale(conversation, e)
	}
}

// seal builds the send: one envelope per recipient device.
func (x *Secure) seal(ctx context.Context, conversation, id string, plaintext []byte) (SendRequest, error) {
	req := SendRequest{ID: id, Conversation: conversation, Ciphertexts: map[string][]byte{}}
	if err := req.prepare(); err != nil {
		return req, err
	}
	members, err := x.membersOf(ctx, conversation)
	if err != nil {
		return req, err
	}
	devices, err := x.devicesOf(ctx, members)
	if err != nil {
		return req, err
	}
	c := e2e.Context{Conversation: conversation, SenderUser: x.sess.UserID, SenderDevice: x.sess.DeviceID, ClientID: id}
	for _, user := range members {
		for _, d := range devices[user] {
			if d.ID == x.sess.DeviceID {
				if !bytes.Equal(d.PublicKey, x.id.PublicKey()) || !bytes.Equal(d.SigningKey, x.id.SigningKey()) || d.KEM != x.id.KEM() {
					return req, ErrIdentityMismatch
				}
				continue
			}
			c.RecipientDevice = d.ID
			env, err := e2e.Seal(x.id, d.KEM, d.PublicKey, c, plaintext)
			if err != nil {
				return req, fmt.Errorf("client: sealing for device %s of %s: %w", d.ID, user, err)
			}
			req.Ciphertexts[d.ID] = env
		}
	}
	return req, nil
}

// membersOf returns the members of a conversation, listing the caller's
// conversations when it is not cached.
func (x *Secure) membersOf(ctx context.Context, conversation string) ([]string, error) {
	x.mu.Lock()
	m, ok := x.members[conversation]
	x.mu.Unlock()
	if ok {
		return m, nil
	}
	convs, err := x.sess.Conversations(ctx)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	for _, cv := range convs {
		x.members[cv.ID] = cv.Members
	}
	m, ok = x.members[conversation]
	x.mu.Unlock()
	if !ok {
		return nil, &Error{Code: CodeNoSuchConversation, Detail: "not one of the caller's conversations"}
	}
	return m, nil
}

// fetchConcurrency bounds the device lists fetched at once.
const fetchConcurrency = 8

// devicesOf returns the active devices of each user, fetching those not
// cached, a few at a time.
func (x *Secure) devicesOf(ctx context.Context, users []string) (map[string][]Device, error) {
	out := make(map[string][]Device, len(users))
	var fetch []string
	x.mu.Lock()
	for _, u := range users {
		if ds, ok := x.devices[u]; ok {
			out[u] = ds
		} else {
			fetch = append(fetch, u)
		}
	}
	gen := x.gen
	x.mu.Unlock()
	if len(fetch) == 0 {
		return out, nil
	}

	lists := make([][]Device, len(fetch))
	errs := make([]error, len(fetch))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(len(fetch), fetchConcurrency) {
		wg.Go(func() {
			for i := range next {
				lists[i], errs[i] = x.sess.Devices(ctx, fetch[i])
			}
		})
	}
	for i := range fetch {
		next <- i
	}
	close(next)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("client: listing the devices of %s: %w", fetch[i], err)
		}
	}

	x.mu.Lock()
	defer x.mu.Unlock()
	for i, u := range fetch {
		x.learn(u, lists[i])
		// A list fetched while a change was pushed may be stale: use it
		// for this send (a mismatch will tell), but do not keep it.
		if x.gen == gen {
			x.devices[u] = lists[i]
		}
		out[u] = lists[i]
	}
	return out, nil
}

// learn remembers the signing keys of devices seen for the first time.
// The first answer for a device id stands: ids are never reused, and a
// device's keys never change. x.mu is held.
func (x *Secure) learn(user string, ds []Device) {
	for _, d := range ds {
		if _, ok := x.keys[d.ID]; !ok {
			x.keys[d.ID] = deviceKey{user: user, signing: d.SigningKey}
		}
	}
}

// forgetStale drops what a devices_mismatch shows stale: the members of
// the conversation, the device lists of the owners of extra devices and of
// missing devices seen before, and, when a missing device is new, the
// lists of every member (it may be anyone's).
func (x *Secure) forgetStale(conversation string, e *Error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gen++
	members := x.members[conversation]
	delete(x.members, conversation)
	everyone := false
	for _, id := range append(e.Missing, e.Extra...) {
		if k, ok := x.keys[id]; ok {
			delete(x.devices, k.user)
		} else {
			everyone = true
		}
	}
	if everyone {
		for _, u := range members {
			delete(x.devices, u)
		}
	}
}

// deviceChanged drops the cached device list of a user whose devices
// changed, or of every user for "" (see Conn.DevicesChanged).
func (x *Secure) deviceChanged(user string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.gen++
	if user == "" {
		clear(x.devices)
	} else {
		delete(x.devices, user)
	}
}

// drainEvents applies the devices_changed frames waiting in the Conn.
func (x *Secure) drainEvents() {
	for {
		x.mu.Lock()
		ch := x.events
		x.mu.Unlock()
		if ch == nil {
			return
		}
		select {
		case user, ok := <-ch:
			if !ok {
				x.mu.Lock()
				x.events = nil
				x.mu.Unlock()
				return
			}
			x.deviceChanged(user)
		default:
			return
		}
	}
}

// errNoConn is Receive's error on a Secure made without a Conn.
var errNoConn = errors.New("client: Secure has no Conn; use Open")

// Receive waits for the next message of the Conn and opens it. A message
// that does not open is returned with its ids (and no plaintext) and a
// *DecryptError: the Conn goes on, and the application decides whether to
// ack it. When the Conn has ended, Receive returns Conn.Err(). In between
// messages it applies the server's devices_changed frames.
func (x *Secure) Receive(ctx context.Context) (Received, error) {
	if x.conn == nil {
		return Received{}, errNoConn
	}
	for {
		x.drainEvents()
		x.mu.Lock()
		events := x.events
		x.mu.Unlock()
		select {
		case user, ok := <-events:
			if ok {
				x.deviceChanged(user)
			} else {
				x.mu.Lock()
				x.events = nil
				x.mu.Unlock()
			}
		case m, ok := <-x.conn.Messages():
			if !ok {
				return Received{}, x.conn.Err()
			}
			return x.Open(ctx, m)
		case <-ctx.Done():
			return Received{}, ctx.Err()
		}
	}
}

// Open opens one message, from the Conn or from [Session.Messages]. It
// verifies the sender device's signature with the signing key from the
// device directory, fetching the sender's device list when the device is
// not known yet. On failure it returns the message's ids and a
// *DecryptError.
func (x *Secure) Open(ctx context.Context, m Message) (Received, error) {
	r := Received{Conversation: m.Conversation, Seq: m.Seq, SenderUserID: m.SenderUserID,
		SenderDeviceID: m.SenderDeviceID, TS: m.TS}
	fail := func(err error) (Received, error) { return r, &DecryptError{Message: m, Err: err} }
	if m.Event != nil {
		// Nothing to open; a membership change changes whom to seal for.
		r.Event = m.Event
		x.membersChanged(m.Conversation, m.Event)
		return r, nil
	}
	h, err := e2e.Inspect(m.Ciphertext)
	if err != nil {
		return fail(err)
	}
	c := e2e.Context{Conversation: m.Conversation, SenderUser: m.SenderUserID, SenderDevice: m.SenderDeviceID,
		ClientID: h.ClientID, RecipientDevice: x.sess.DeviceID}
	var pt []byte
	if h.Assisted {
		if x.opts.RefuseAssisted {
			return fail(ErrAssistedRefused)
		}
		pt, err = e2e.OpenAssisted(x.id, c, m.Ciphertext)
	} else {
		var key ed25519.PublicKey
		if key, err = x.signingKey(ctx, m.SenderUserID, m.SenderDeviceID); err != nil {
			return fail(err)
		}
		pt, err = e2e.Open(x.id, key, c, m.Ciphertext)
	}
	if err != nil {
		return fail(err)
	}
	r.ClientID, r.Plaintext, r.Assisted = h.ClientID, pt, h.Assisted
	return r, nil
}

// signingKey returns the signing key of a user's device, listing the
// user's devices again when the device is new to this Secure.
func (x *Secure) signingKey(ctx context.Context, user, device string) (ed25519.PublicKey, error) {
	x.mu.Lock()
	k, ok := x.keys[device]
	x.mu.Unlock()
	if !ok {
		x.mu.Lock()
		gen := x.gen
		x.mu.Unlock()
		ds, err := x.sess.Devices(ctx, user)
		if err != nil {
			return nil, fmt.Errorf("client: listing the devices of %s: %w", user, err)
		}
		x.mu.Lock()
		x.learn(user, ds)
		if x.gen == gen {
			x.devices[user] = ds // fresh: the next send to this user can use it
		}
		k, ok = x.keys[device]
		x.mu.Unlock()
	}
	if !ok || k.user != user {
		return nil, fmt.Errorf("%w: %s of %s", ErrUnknownDevice, device, user)
	}
	return k.signing, nil
}
