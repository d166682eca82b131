package chat

import (
	"time"

	"context"
	"errors"
	"fmt"
	"slices"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/e2e"
	"github.com/switchboard-chat/switchboard/wire"
)

// SendRequest is a send frame (or the HTTP send body), decoded.
type SendRequest struct {
	ClientID       string
	ConversationID string
	Ciphertexts    map[string][]byte // one per recipient device, or
	Ciphertext     []byte            // one shared by all recipients, or
	Plaintext      []byte            // server-assisted: the node seals it to each recipient device
}

func (s *Service) validSend(r *SendRequest) error {
	if r.ClientID == "" || len(r.ClientID) > maxClientID {
		return sb.Errorf(sb.EINVALID, wire.CodeInvalidMessage, "id must be 1 to %d bytes", maxClientID)
	}
	if n := count(r.Ciphertext != nil, r.Ciphertexts != nil, r.Plaintext != nil); n != 1 {
		return sb.Errorf(sb.EINVALID, wire.CodeInvalidMessage, "give exactly one of ciphertext, ciphertexts and plaintext")
	}
	if r.Plaintext != nil && s.cfg.E2EOnly {
		return sb.Errorf(sb.EFORBIDDEN, wire.CodePlaintextRefused, "this node is end-to-end only: seal the message on the device")
	}
	check := func(ct []byte) error {
		switch {
		case len(ct) == 0:
			return sb.Errorf(sb.EINVALID, wire.CodeInvalidMessage, "empty ciphertext")
		case len(ct) > s.cfg.MaxCiphertext:
			return sb.Errorf(sb.ETOOLARGE, wire.CodeTooLarge, "ciphertext over %d bytes", s.cfg.MaxCiphertext)
		}
		return nil
	}
	if r.Plaintext != nil {
		if limit := s.cfg.MaxAssistedBytes; limit > 0 && len(r.Plaintext) > limit {
			return sb.Errorf(sb.ETOOLARGE, wire.CodeTooLarge, "plaintext over %d bytes: the node seals it once per recipient device; seal larger messages on the device", limit)
		}
		return check(r.Plaintext)
	}
	if r.Ciphertexts == nil {
		return check(r.Ciphertext)
	}
	for _, ct := range r.Ciphertexts {
		if err := check(ct); err != nil {
			return err
		}
	}
	return nil
}

// Send validates, commits and publishes a message from the caller's device.
// It returns the stored message; duplicate is true when the device already
// sent this client id (nothing new was stored).
func (s *Service) Send(ctx context.Context, id Identity, r *SendRequest) (stored *sb.Message, duplicate bool, err error) {
	m, err := s.prepare(ctx, id, r)
	if err != nil {
		return nil, false, err
	}
	stored, duplicate, err = s.store.AppendMessage(ctx, m)
	return s.finish(m, stored, duplicate, err)
}

// SendAsync is Send for a caller that must not wait for the commit (a
// socket's reader, so that one socket can have several sends in one group
// commit): it calls done exactly once with what Send would return, before
// it returns when r is refused or the store is closed, else after the
// commit, from the store's committer (done must
// not block). Sends of one caller to one conversation get seqs in call
// order.
func (s *Service) SendAsync(ctx context.Context, id Identity, r *SendRequest, done func(stored *sb.Message, duplicate bool, err error)) {
	m, err := s.prepare(ctx, id, r)
	if err != nil {
		done(nil, false, err)
		return
	}
	s.store.AppendMessageAsync(m, func(stored *sb.Message, duplicate bool, err error) {
		done(s.finish(m, stored, duplicate, err))
	})
}

// prepare checks a send and builds the message to store: the caller's
// membership and limits, and ciphertexts for exactly the active devices of
// the members (sealed here in the server-assisted mode).
func (s *Service) prepare(ctx context.Context, id Identity, r *SendRequest) (*sb.Message, error) {
	m, err := s.check(ctx, id, r)
	var e *sb.Error
	if err != nil && !errors.As(err, &e) {
		// A store or limiter that could not answer (PostgreSQL restarting,
		// say): nothing was stored, and the same id may be sent again.
		s.cfg.Logger.Warn("send not checked", "conversation", r.ConversationID, "err", err)
		return nil, sb.Errorf(sb.EUNAVAILABLE, wire.CodeUnavailable, "the message could not be checked; retry with the same id")
	}
	return m, err
}

// check is prepare but for the kind of its errors.
func (s *Service) check(ctx context.Context, id Identity, r *SendRequest) (*sb.Message, error) {
	if err := s.validSend(r); err != nil {
		return nil, err
	}
	members, err := s.member(ctx, id, r.ConversationID)
	if err != nil {
		return nil, err
	}
	if err := s.sendAllowed(ctx, id, r.ConversationID); err != nil {
		return nil, err
	}
	if err := s.sendBlocked(ctx, id, r.ConversationID); err != nil {
		return nil, err
	}
	devices, err := s.cache.activeDevices(ctx, members)
	if err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	m := &sb.Message{ConversationID: r.ConversationID, SenderUserID: id.UserID, SenderDeviceID: id.DeviceID,
		ClientID: r.ClientID, SentAt: s.now(), Ciphertexts: make(map[string][]byte, devices.count())}
	for _, ds := range devices {
		for i := range ds {
			if d := &ds[i]; d.ID != id.DeviceID {
				m.Ciphertexts[d.ID] = r.Ciphertexts[d.ID] // nil for a shared ciphertext
			}
		}
	}
	switch {
	case r.Plaintext != nil:
		err := s.assist(ctx, id, m, devices, r.Plaintext)
		clear(r.Plaintext) // from here on only ciphertext exists
		if err != nil {
			return nil, err
		}
	case r.Ciphertext != nil:
		m.Shared = r.Ciphertext
	default:
		if err := matchDevices(m.Ciphertexts, r.Ciphertexts); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// finish turns the store's answer to the append of m into Send's: a
// client error, the stored duplicate, or m, stored and published.
func (s *Service) finish(m, stored *sb.Message, duplicate bool, err error) (*sb.Message, bool, error) {
	if err != nil {
		return nil, false, sb.Errorf(sb.EUNAVAILABLE, wire.CodeUnavailable, "the message could not be stored; retry with the same id")
	}
	if duplicate {
		if stored.ConversationID != m.ConversationID {
			return nil, false, sb.Errorf(sb.EINVALID, wire.CodeInvalidMessage, "this device already used id %q in another conversation", m.ClientID)
		}
		return stored, true, nil
	}
	// Published already, by the store's committer (publish).
	m.Seq, m.SentAt = stored.Seq, stored.SentAt
	return m, false, nil
}

// publish puts a stored message on its conversation's topic. The store
// calls it (Store.OnAppended) in commit order, so that live delivery is in
// seq order, which a publish after AppendMessage returns would not be (two
// sends committed together return in any order).
func (s *Service) publish(m *sb.Message) {
	// Not the sender's context: the message is stored, its publish is not
	// the sender's to cancel.
	s.metrics.sent.Inc()
	stamped := *m // m is the sender's too: stamp a copy
	stamped.Committed = time.Now()
	if err := s.bus.Publish(context.Background(), Topic(m.ConversationID), EncodeMessage(&stamped)); err != nil {
		// Stored is delivered: recipients get it at their next sync.
		s.cfg.Logger.Warn("publish failed", "conversation", m.ConversationID, "seq", m.Seq, "err", err)
	}
}

func count(bs ...bool) (n int) {
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// assist is the server-assisted mode: it seals plaintext to each recipient
// device's registered public key (docs/crypto.md), so that only ciphertext
// is stored, published or logged. One request becomes one ciphertext per
// recipient, so what it costs is bounded and paid for before any sealing:
// at most MaxAssistedRecipients recipients, recipients x size charged to
// the sender's byte budget (what the node will store for it, on top of the
// request's own bytes), and the seals share the node's seal slots with
// every other send (one per core).
func (s *Service) assist(ctx context.Context, id Identity, m *sb.Message, devices deviceLists, plaintext []byte) error {
	n := len(m.Ciphertexts)
	if limit := s.cfg.MaxAssistedRecipients; limit > 0 && n > limit {
		return sb.Errorf(sb.EINVALID, wire.CodeInvalidMessage,
			"plaintext to %d recipient devices: the node seals for at most %d; seal on the device (ciphertext or ciphertexts)", n, limit)
	}
	if err := s.Allow(ctx, LimitDeviceBytes, id.DeviceID, int64(n)*int64(len(plaintext))); err != nil {
		return err
	}
	for _, ds := range devices {
		for i := range ds {
			d := &ds[i]
			if _, ok := m.Ciphertexts[d.ID]; !ok {
				continue
			}
			if err := s.seal(ctx, m, d, plaintext); err != nil {
				return err
			}
		}
	}
	return nil
}

// sealAssisted is e2e.SealAssisted; a test counts the seals in flight through it.
var sealAssisted = e2e.SealAssisted

// seal seals plaintext for one recipient device in one of the node's seal
// slots: however many sends arrive, at most one seal per core runs.
func (s *Service) seal(ctx context.Context, m *sb.Message, d *sb.Device, plaintext []byte) error {
	if err := s.sealSlots.take(ctx); err != nil {
		return fmt.Errorf("seal for device %s: %w", d.ID, err)
	}
	defer s.sealSlots.put()
	ct, err := sealAssisted(d.KEM, d.PublicKey, e2e.Context{Conversation: m.ConversationID,
		SenderUser: m.SenderUserID, SenderDevice: m.SenderDeviceID, ClientID: m.ClientID, RecipientDevice: d.ID}, plaintext)
	if err != nil {
		return fmt.Errorf("seal for device %s: %w", d.ID, err)
	}
	m.Ciphertexts[d.ID] = ct
	return nil
}

// matchDevices checks the ciphertexts' keys are exactly the recipients (the keys of want).
func matchDevices(want, got map[string][]byte) error {
	missing, extra := []string{}, []string{} // both always present on the wire
	for d := range want {
		if _, ok := got[d]; !ok {
			missing = append(missing, d)
		}
	}
	for d := range got {
		if _, ok := want[d]; !ok {
			extra = append(extra, d)
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		return nil
	}
	slices.Sort(missing)
	slices.Sort(extra)
	e := sb.Errorf(sb.ECONFLICT, wire.CodeDevicesMismatch, "ciphertexts must cover exactly the recipient devices")
	e.Missing, e.Extra = missing, extra
	return e
}

// Topic is the bus topic of a conversation's messages.
func Topic(conversationID string) string { return "conv." + conversationID }

// TopicPrefix matches every conversation topic.
const TopicPrefix = "conv."
