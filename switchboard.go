package switchboard

import (
	"context"
	"time"
)

// Conversation kinds.
const (
	KindDirect = "direct"
	KindGroup  = "group"
)

// User is an account. PasswordHash is an encoded argon2id hash, never the password.
type User struct {
	ID           string
	Username     string
	PasswordHash string
	CreatedAt    time.Time
}

// Device is one client of a user (phone, browser, bot) with its own keys.
// Keys are stored exactly as the device registered them.
type Device struct {
	ID         string
	UserID     string
	Name       string
	KEM        string // HPKE KEM name, e.g. "x25519"
	PublicKey  []byte // HPKE public key
	SigningKey []byte // Ed25519 public key
	CreatedAt  time.Time
	RevokedAt  *time.Time // nil while active
}

// Session binds a bearer token (stored only as its SHA-256 hash) to a device.
type Session struct {
	TokenHash []byte
	UserID    string
	DeviceID  string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Conversation is a direct chat or a group. HeadSeq is the seq of its newest message.
type Conversation struct {
	ID        string
	Kind      string
	Title     string
	CreatedBy string
	CreatedAt time.Time
	HeadSeq   int64
	Members   []string // user ids, sorted
	// Admins are the members who may change the members (a group's
	// creator at first), sorted; a subset of Members.
	Admins []string
}

// HasMember reports whether userID is a member of c.
func (c *Conversation) HasMember(userID string) bool {
	for _, m := range c.Members {
		if m == userID {
			return true
		}
	}
	return false
}

// Message is one stored message with every recipient device's ciphertext.
// Either Shared is set (one ciphertext for all recipients; the values of
// Ciphertexts are then nil) or each recipient device has its own entry.
// The keys of Ciphertexts are exactly the recipient device ids.
type Message struct {
	ConversationID string
	Seq            int64 // assigned by the store
	SenderUserID   string
	SenderDeviceID string
	ClientID       string // client message id, unique per sender device
	SentAt         time.Time
	Shared         []byte
	Ciphertexts    map[string][]byte
	// Event, set for a system event (a membership change, a missed call),
	// is its JSON as the clients get it, opaque to the store; an event has
	// no ciphertext (Shared nil, nil values in Ciphertexts, whose keys are
	// its recipients as for a message). See members.go.
	Event []byte
	// Change is what the event does to the members, applied by the store
	// in the transaction that stores the event; nil for none.
	Change *MemberChange
	// Committed is when the originating node's store committed the
	// message, as that node's clock read it: the bus carries it so that
	// each node can measure fan-out latency. Zero when read from a store.
	Committed time.Time
}

// CiphertextFor returns what device id receives of m, and whether it is a recipient.
func (m *Message) CiphertextFor(deviceID string) ([]byte, bool) {
	ct, ok := m.Ciphertexts[deviceID]
	if !ok {
		return nil, false
	}
	if m.Shared != nil {
		return m.Shared, true
	}
	return ct, true
}

// Delivery is a message as one device receives it.
type Delivery struct {
	ConversationID string
	Seq            int64
	SenderUserID   string
	SenderDeviceID string
	SentAt         time.Time
	Ciphertext     []byte
	Event          []byte // a system event's JSON (Message.Event); Ciphertext is then nil
}

// Store is the durable truth. Both implementations (SQLite, PostgreSQL) pass
// the same conformance suite in internal/storetest.
//
// Not-found lookups return an error wrapping ErrNotFound.
type Store interface {
	ReceiptStore // read marks and the receipts setting (receipts.go)

	// CreateUser stores u; a taken username returns ErrUsernameTaken.
	CreateUser(ctx context.Context, u *User) error
	UserByName(ctx context.Context, username string) (*User, error)
	UserExists(ctx context.Context, userID string) (bool, error)

	// CreateDevice stores d (ID, UserID and CreatedAt set by the caller) and,
	// unless s is nil, its first session, in one transaction: either both are
	// stored or neither, so a login never leaves a device without a token.
	// s must be for d (s.DeviceID == d.ID, s.UserID == d.UserID).
	CreateDevice(ctx context.Context, d *Device, s *Session) error
	Device(ctx context.Context, deviceID string) (*Device, error)
	// ActiveDevices returns the non-revoked devices of the given users,
	// ordered by user id then created_at then device id.
	ActiveDevices(ctx context.Context, userIDs ...string) ([]Device, error)
	// RevokeDevice marks a device of userID revoked and deletes its sessions;
	// ErrNotFound when no such active device of that user exists.
	RevokeDevice(ctx context.Context, userID, deviceID string, at time.Time) error

	// CreateSession stores another session of an existing device.
	CreateSession(ctx context.Context, s *Session) error
	// SessionByTokenHash returns the session and its device (which may be revoked).
	SessionByTokenHash(ctx context.Context, hash []byte) (*Session, *Device, error)

	// CreateConversation stores c with its members (c.Members already includes the creator).
	CreateConversation(ctx context.Context, c *Conversation) error
	Conversation(ctx context.Context, id string) (*Conversation, error)
	// Conversations lists the conversations userID is a member of whose id is
	// above after ("" for the first page), ordered by id, at most limit, with
	// members and head seq: one page, so that a user put into many groups
	// costs a bounded read per request.
	Conversations(ctx context.Context, userID, after string, limit int) ([]Conversation, error)
	// Contacts returns distinct users who share a conversation with userID
	// (userID itself included), read from at most limit membership rows, in
	// no particular order: the cost of a login's or a revocation's
	// devices_changed notice, bounded however many groups userID is in.
	Contacts(ctx context.Context, userID string, limit int) ([]string, error)

	// Block records that userID blocks blockedID (again: no change); both exist.
	Block(ctx context.Context, userID, blockedID string, at time.Time) error
	// Unblock removes userID's block of blockedID, if there is one.
	Unblock(ctx context.Context, userID, blockedID string) error
	// Blockers returns those users of among who block userID, in no particular order.
	Blockers(ctx context.Context, userID string, among []string) ([]string, error)
	// Heads returns the head seq of each conversation userID is a member of:
	// what a device's sync needs, without reading every member of every
	// group the way Conversations does.
	//
	// A conversation userID left (MemberChange) is in it too, with the
	// seq of the event that removed them as its head: their devices sync
	// up to that event, and nothing after it.
	Heads(ctx context.Context, userID string) (map[string]int64, error)
	// Membership returns userID's membership of the conversation, current
	// or former (LeftSeq > 0); ErrNotFound when they never were a member
	// (or the conversation does not exist).
	Membership(ctx context.Context, conversationID, userID string) (Membership, error)

	// AppendMessage assigns m.Seq (head seq + 1) and stores m with its ciphertexts
	// atomically, unless m.SenderDeviceID already sent m.ClientID: then it returns the
	// stored message (its Seq and SentAt) and duplicate=true and stores nothing.
	// Its recipients are exactly the keys of m.Ciphertexts. A shared ciphertext is
	// stored once; the stores keep the recipient set once per change of set in the
	// conversation, not per message, so a send to the same devices as the one before
	// costs no row per device.
	// An event with a Change (m.Change) changes the members in the same
	// transaction, at m's seq, so that the change is ordered with the
	// messages around it.
	// It returns only once m is committed (durable as the store is configured).
	// Concurrent calls may share one transaction (group commit): each still
	// gets its own result, and one call's failure (an unknown conversation)
	// is its own. A ctx that ends while m waits for a commit withdraws it
	// (nothing is stored); once its commit has begun, the call waits for it.
	AppendMessage(ctx context.Context, m *Message) (stored *Message, duplicate bool, err error)
	// AppendMessageAsync is AppendMessage that returns at once, so that a
	// socket that sends faster than one commit at a time has several sends
	// in one group commit instead of one commit each: it queues m behind
	// every append queued before it (calls for one conversation from one
	// goroutine get seqs in call order) and calls done exactly once with
	// what AppendMessage would return, after the commit that holds m (from
	// the store's committer, so done must not block), or before it returns
	// when m cannot be queued (a closed store). m is the store's until done
	// is called.
	AppendMessageAsync(m *Message, done func(stored *Message, duplicate bool, err error))
	// OnAppended sets fn, which is called once for each newly stored message
	// (never for a duplicate), after the commit that holds it and before its
	// AppendMessage returns (or its AppendMessageAsync calls done), serially
	// and in seq order per conversation: concurrent calls committed together
	// return in any order, their commits do not, so a node that publishes
	// from fn delivers live in seq order. fn gets a copy of the message with
	// Seq and SentAt set; it runs on the store's committer, so it must not
	// block. Set it before the first append.
	OnAppended(fn func(m *Message))
	// Messages returns what deviceID receives in the conversation with seq > afterSeq,
	// ascending, at most limit: each message whose recipients included deviceID, with
	// its own ciphertext or the shared one.
	Messages(ctx context.Context, deviceID, conversationID string, afterSeq int64, limit int) ([]Delivery, error)
	// Ack moves the device's cursor in the conversation up to seq (never down).
	Ack(ctx context.Context, deviceID, conversationID string, seq int64) error
	// Cursors returns the acked seq per conversation of the device (absent means 0).
	Cursors(ctx context.Context, deviceID string) (map[string]int64, error)

	// PurgeBefore deletes up to limit messages sent before t, with their
	// ciphertexts, oldest first, and returns how many it deleted. Cursors and
	// head seqs stay: seqs are never reused. A limit <= 0 deletes nothing.
	//
	// Idempotency does not survive a purge: a send of a purged message's
	// client id by the same device is no longer recognized as a duplicate
	// and may be stored again, as a new message with a new seq.
	PurgeBefore(ctx context.Context, t time.Time, limit int) (int, error)
	// PurgeAcked deletes up to limit per-device ciphertext rows whose seq is at
	// or below that device's cursor in the conversation (the device has them),
	// and returns how many it deleted. Messages left without any ciphertext row
	// are deleted too (they count in the total). A message with a shared
	// ciphertext has no row per device: it is deleted (and counted once) when
	// each of its recipients has a cursor at or past its seq or is revoked;
	// rows and shared messages together are at most limit, so one call deletes
	// at most 2*limit rows. Client ids of deleted messages are forgotten as with
	// PurgeBefore. A limit <= 0 deletes nothing.
	PurgeAcked(ctx context.Context, limit int) (int, error)

	// Ping checks the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}

// Bus carries events between the nodes (or within one node). Pub/sub is the
// fast path only: what it loses the store still has.
type Bus interface {
	// Publish sends data to every subscriber of topic.
	Publish(ctx context.Context, topic string, data []byte) error
	// Subscribe calls fn for every message on a topic with the given prefix
	// (e.g. "conv."), in publish order per topic, until cancel is called.
	//
	// A bus that can lose its connection (Redis) subscribes again when it
	// is back, and then calls resumed, unless it is nil: what was published
	// while the subscription was down may be lost, and a subscriber that
	// must not miss it reads it from the store. resumed is called after the
	// subscription is live again (what is published from then on reaches
	// fn) and must not block. A bus that cannot be interrupted never calls it.
	Subscribe(prefix string, fn func(topic string, data []byte), resumed func()) (cancel func(), err error)
	// SubscribeTopics calls fn for every message on the exact topics added
	// to the returned set, in publish order per topic: a node subscribes to
	// the conversations its sockets are in, not to every conversation. The
	// set starts empty; resumed is as for Subscribe. A bus may shard some
	// topics (Redis Cluster: SPUBLISH), which then reach topic subscribers
	// only, never a prefix subscriber.
	SubscribeTopics(fn func(topic string, data []byte), resumed func()) (Topics, error)
	Ping(ctx context.Context) error
	Close() error
}

// Topics is a changing set of exact topics one subscriber receives
// (Bus.SubscribeTopics).
type Topics interface {
	// Add subscribes to topics and returns once they are live: what is
	// published on them from then on reaches the subscriber. Adding a topic
	// already in the set is harmless. Concurrent Adds may be sent to the
	// bus as one command. If ctx ends first (the bus is unreachable), the
	// topics stay in the set and become live when the bus answers again,
	// which calls resumed: what was published meanwhile is for the
	// subscriber to read from the store.
	Add(ctx context.Context, topics ...string) error
	// Remove unsubscribes from topics; messages already on their way may
	// still arrive.
	Remove(topics ...string)
	// Close removes every topic and ends the subscription.
	Close()
}
