package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// Config holds the service's limits; zero values get the defaults in brackets.
type Config struct {
	Argon2        Argon2Params  // password hashing cost [DefaultArgon2]
	SessionTTL    time.Duration // token lifetime [30 days]
	MaxMembers    int           // members per conversation [1000]
	MaxCiphertext int           // bytes per decoded ciphertext [64 KiB]
	SendRate      float64       // sends per second per device [50]
	SendBurst     int           // sends a device may burst [100]
	E2EOnly       bool          // refuse server-assisted (plaintext) sends with plaintext_refused
	Limits        Limits        // abuse limits [DefaultLimits]
	Limiter       Limiter       // where the limits count [an in-process MemoryLimiter]
	Sessions      SessionCache  // token lookups cached for the cluster (sessions.go) [none: the store every time]
	Logger        *slog.Logger
	Now           func() time.Time

	// Server-assisted sends: the node seals the plaintext once per
	// recipient device, so one send costs recipients x size in CPU and in
	// stored bytes. A negative value turns a bound off (the plaintext is
	// still at most MaxCiphertext).
	MaxAssistedBytes      int // plaintext bytes [64 KiB]
	MaxAssistedRecipients int // recipient devices [256]

	// Password hashing: at most HashSlots argon2id hashes run at once
	// (so at most HashSlots x Argon2.MemoryKiB of their memory); a login
	// or signup waits up to HashWait for a slot, then gets 503 unavailable.
	HashSlots int           // [one per core but one, GOMAXPROCS-1, at least 1]
	HashWait  time.Duration // [2 s]

	// Presence is where the nodes keep who is online (presence.go) [this
	// process's sockets only]; the node claims its users again every
	// PresenceHeartbeat, which must be well under the Presence's TTL [5 s].
	Presence          sb.Presence
	PresenceHeartbeat time.Duration
}

func (c *Config) setDefaults() {
	if c.Argon2.Time == 0 {
		c.Argon2 = DefaultArgon2
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = 30 * 24 * time.Hour
	}
	if c.MaxMembers == 0 {
		c.MaxMembers = 1000
	}
	if c.MaxCiphertext == 0 {
		c.MaxCiphertext = 64 << 10
	}
	if c.MaxAssistedBytes == 0 {
		c.MaxAssistedBytes = 64 << 10
	}
	if c.MaxAssistedRecipients == 0 {
		c.MaxAssistedRecipients = 256
	}
	if c.HashWait == 0 {
		c.HashWait = 2 * time.Second
	}
	if c.SendRate == 0 {
		c.SendRate = 50
	}
	if c.SendBurst == 0 {
		c.SendBurst = 100
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Limits.setDefaults()
	if c.Limiter == nil {
		c.Limiter = NewMemoryLimiter(c.Now)
	}
	if c.Presence == nil {
		c.Presence = &localPresence{online: make(map[string]bool), lastSeen: make(map[string]time.Time)}
	}
	if c.PresenceHeartbeat == 0 {
		c.PresenceHeartbeat = 5 * time.Second
	}
}

// Service is the application: every operation a client can ask for.
type Service struct {
	store   sb.Store
	bus     sb.Bus
	cfg     Config
	limiter Limiter
	cache   *cache
	// dummyHash is verified against when a username is unknown, so a login
	// takes as long for a missing user as for a wrong password.
	dummyHash string
	acks      acker            // socket acks waiting for their commit (acks.go)
	hashSlots slots            // argon2id hashes running (slots.go)
	sealSlots slots            // server-assisted seals running, one per core
	history   historyGate      // history reads in progress (history.go)
	pres      *presenceTracker // this node's sockets per user (presence.go)
	typing    typingState      // typing notices being relayed (typing.go)
	receipts  receiptQueue     // receipts waiting for their second (receipts.go)
	metrics   *metrics         // metrics.go
	sessions  sessionCache     // cached token lookups (sessions.go)
	interest  *Interest        // conversations subscribed on the bus (interest.go), set by Subscribe
}

// New returns a Service over store and bus.
func New(store sb.Store, bus sb.Bus, cfg Config) *Service {
	cfg.setDefaults()
	s := &Service{
		store:     store,
		bus:       bus,
		cfg:       cfg,
		limiter:   cfg.Limiter,
		cache:     newCache(store, 100_000),
		dummyHash: HashPassword("not a password", cfg.Argon2),
		hashSlots: newSlots(cfg.HashSlots),
		sealSlots: newSlots(0),
		metrics:   newMetrics(),
		sessions:  sessionCache{c: cfg.Sessions},
	}
	s.acks = acker{store: store, log: cfg.Logger, metrics: s.metrics}
	s.pres = newPresenceTracker(s, cfg.Presence, cfg.PresenceHeartbeat)
	// The store publishes each message for us, from its committer, in seq
	// order.
	store.OnAppended(s.publish)
	return s
}

// Identity is an authenticated device.
type Identity struct {
	UserID   string
	DeviceID string
	// ExpiresAt is when the token that authenticated it expires (zero: never checked).
	ExpiresAt time.Time
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC().Truncate(time.Millisecond) }

// CreateAccount registers a user and returns its id. Usernames are
// unique regardless of case (the store compares them folded); the user
// keeps the form given here.
func (s *Service) CreateAccount(ctx context.Context, username, password string) (string, error) {
	if err := validUsername(username); err != nil {
		return "", err
	}
	if err := validPassword(password); err != nil {
		return "", err
	}
	var hash string
	if err := s.hashing(ctx, func() { hash = HashPassword(password, s.cfg.Argon2) }); err != nil {
		return "", err
	}
	u := &sb.User{ID: NewID("usr"), Username: username, PasswordHash: hash, CreatedAt: s.now()}
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, sb.ErrUsernameTaken) {
			return "", sb.ErrUsernameTaken
		}
		return "", fmt.Errorf("create user: %w", err)
	}
	return u.ID, nil
}

// Login is the answer to a successful login.
type Login struct {
	UserID, DeviceID, Token string
	ExpiresAt               time.Time
}

var errBadCredentials = sb.Errorf(sb.EUNAUTHORIZED, wire.CodeBadCredentials, "wrong username or password")

// errLoginAbandoned answers a login whose caller gave up (its context is
// done) before its device was committed: nothing was created.
var errLoginAbandoned = sb.Errorf(sb.EUNAVAILABLE, wire.CodeUnavailable, "the login was abandoned before its device was created; log in again")

// Login checks the password and creates a new device with a fresh token.
// The username matches regardless of case. Once ctx is done (the request
// timed out, the client left) no device is created: a device nobody holds
// the token of would count toward the user's device limit for ever.
func (s *Service) Login(ctx context.Context, username, password string, dev DeviceInfo) (*Login, error) {
	if err := dev.Validate(); err != nil {
		return nil, err
	}
	// Only a well-formed username gets a bucket (another cannot exist), so
	// junk names cannot grow the limiter. Folded, so that ALICE, Alice
	// and alice share one.
	if validUsername(username) == nil {
		if err := s.Allow(ctx, LimitLoginAccount, foldUsername(username), 1); err != nil {
			return nil, err
		}
	}
	u, err := s.store.UserByName(ctx, username)
	if errors.Is(err, sb.ErrNotFound) {
		if err := s.hashing(ctx, func() { VerifyPassword(password, s.dummyHash) }); err != nil {
			return nil, err
		}
		return nil, errBadCredentials
	}
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	var ok bool
	var bad error
	if err := s.hashing(ctx, func() { ok, bad = VerifyPassword(password, u.PasswordHash) }); err != nil {
		return nil, err
	}
	if bad != nil || !ok {
		return nil, errBadCredentials
	}
	if err := s.deviceRoom(ctx, u.ID); err != nil {
		return nil, err
	}
	now := s.now()
	d := &sb.Device{ID: NewID("dev"), UserID: u.ID, Name: dev.Name, KEM: dev.KEM,
		PublicKey: dev.PublicKey, SigningKey: dev.SigningKey, CreatedAt: now}
	token, hash := NewToken()
	sess := &sb.Session{TokenHash: hash, UserID: u.ID, DeviceID: d.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	// Checked here, not left to the store: the hash may have taken most of
	// the request's time, and a store need not look at ctx (argon2 does not).
	if ctx.Err() != nil {
		return nil, errLoginAbandoned
	}
	// One transaction: a failure cannot leave an active device without a token.
	if err := s.store.CreateDevice(ctx, d, sess); err != nil {
		return nil, fmt.Errorf("create device: %w", err)
	}
	s.cache.forgetDevices(u.ID)
	s.devicesChanged(ctx, u.ID)
	return &Login{UserID: u.ID, DeviceID: d.ID, Token: token, ExpiresAt: sess.ExpiresAt}, nil
}

var errUnauthorized = sb.Errorf(sb.EUNAUTHORIZED, wire.CodeUnauthorized, "missing, invalid, expired or revoked token")

// Authenticate returns the device a bearer token belongs to.
func (s *Service) Authenticate(ctx context.Context, token string) (Identity, error) {
	if token == "" || len(token) > 128 {
		return Identity{}, errUnauthorized
	}
	return s.lookupSession(ctx, HashToken(token))
}

// DeviceDirectory lists a user's active devices for a client to show or
// to encrypt to: a replica may answer (sb.MayLag), at most the store's lag
// bound behind, except for this node's own device changes of that user. A
// client that encrypted to a stale list learns the difference from the
// send's devices_mismatch.
func (s *Service) DeviceDirectory(ctx context.Context, userID string) ([]sb.Device, error) {
	return s.devices(ctx, userID, true)
}

// Devices lists a user's active devices as the primary has them.
func (s *Service) Devices(ctx context.Context, userID string) ([]sb.Device, error) {
	return s.devices(ctx, userID, false)
}

func (s *Service) devices(ctx context.Context, userID string, mayLag bool) ([]sb.Device, error) {
	// Whether the user exists is read from the primary: one who just
	// signed up on another node is found.
	ok, err := s.store.UserExists(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	if !ok {
		return nil, sb.Errorf(sb.ENOTFOUND, wire.CodeNotFound, "no such user")
	}
	if mayLag {
		ctx = sb.MayLag(ctx)
	}
	return s.store.ActiveDevices(ctx, userID)
}

// CreateConversation creates a conversation with the caller as a member.
// No member may block the caller. The caller counts the creation against
// LimitConvDevice (Limits.ConvPerDevice) and the client's address first:
// the HTTP handler does, before it decodes the body.
func (s *Service) CreateConversation(ctx context.Context, id Identity, kind string, members []string, title string) (string, error) {
	set := append(slices.Clone(members), id.UserID)
	slices.Sort(set)
	set = slices.Compact(set)
	switch {
	case kind != sb.KindDirect && kind != sb.KindGroup:
		return "", sb.Errorf(sb.EINVALID, wire.CodeInvalidConversation, "kind must be direct or group")
	case kind == sb.KindDirect && len(set) != 2:
		return "", sb.Errorf(sb.EINVALID, wire.CodeInvalidConversation, "a direct conversation has exactly one other member")
	case len(set) > s.cfg.MaxMembers:
		return "", sb.Errorf(sb.EINVALID, wire.CodeInvalidConversation, "at most %d members", s.cfg.MaxMembers)
	case len(title) > maxTitle:
		return "", sb.Errorf(sb.EINVALID, wire.CodeInvalidConversation, "title over %d bytes", maxTitle)
	}
	for _, m := range set {
		ok, err := s.store.UserExists(ctx, m)
		if err != nil {
			return "", fmt.Errorf("create conversation: %w", err)
		}
		if !ok {
			return "", sb.Errorf(sb.EINVALID, wire.CodeInvalidConversation, "unknown user %q", m)
		}
	}
	if err := s.creationBlocked(ctx, id, set); err != nil {
		return "", err
	}
	c := &sb.Conversation{ID: NewID("cnv"), Kind: kind, Title: title, CreatedBy: id.UserID, CreatedAt: s.now(), Members: set}
	if kind == sb.KindGroup {
		c.Admins = []string{id.UserID} // its creator is a group's admin (members.go)
	}
	if err := s.store.CreateConversation(ctx, c); err != nil {
		return "", fmt.Errorf("create conversation: %w", err)
	}
	// The nodes of the members' sockets subscribe to it (they subscribe
	// only to conversations their sockets are in).
	s.publishControl(ctx, topicJoined, Control{Joined: c.ID, Notify: set})
	return c.ID, nil
}

// Conversations lists a page of the caller's conversations: at most limit,
// with ids above after ("" for the first page), by id. A replica may answer
// (sb.MayLag): heads may be up to the store's lag bound behind, and the
// conversations this node created for the user are always there.
func (s *Service) Conversations(ctx context.Context, id Identity, after string, limit int) ([]sb.Conversation, error) {
	return s.store.Conversations(sb.MayLag(ctx), id.UserID, after, limit)
}

// member returns a conversation's members after checking the caller is one.
func (s *Service) member(ctx context.Context, id Identity, convID string) ([]string, error) {
	members, err := s.cache.conversation(ctx, convID)
	if errors.Is(err, sb.ErrNotFound) {
		return nil, sb.Errorf(sb.ENOTFOUND, wire.CodeNoSuchConversation, "no such conversation")
	}
	if err != nil {
		return nil, fmt.Errorf("conversation: %w", err)
	}
	if !slices.Contains(members, id.UserID) {
		return nil, sb.Errorf(sb.EFORBIDDEN, wire.CodeNotMember, "not a member of this conversation")
	}
	return members, nil
}

// Messages returns what the caller's device receives in a conversation after a seq.
// A former member reads up to their removal (members.go).
func (s *Service) Messages(ctx context.Context, id Identity, convID string, after int64, limit int) ([]sb.Delivery, error) {
	upTo, err := s.readable(ctx, id, convID, after)
	if err != nil {
		return nil, err
	}
	ds, err := s.store.Messages(ctx, id.DeviceID, convID, after, limit)
	for len(ds) > 0 && ds[len(ds)-1].Seq > upTo {
		ds = ds[:len(ds)-1]
	}
	return ds, err
}

// Backlog returns, per conversation of the caller, what the device has not acked.
// It calls fn for each page in seq order per conversation; fn's error stops it.
// Callers subscribe to live messages first: one committed after Backlog read
// a conversation's head comes only live (and one may come both ways).
func (s *Service) Backlog(ctx context.Context, id Identity, fn func(convID string, page []sb.Delivery) error) (map[string]int64, error) {
	heads, err := s.store.Heads(ctx, id.UserID)
	if err != nil {
		return nil, err
	}
	return s.BacklogTo(ctx, id, heads, fn)
}

// BacklogTo is Backlog up to heads, the user's heads the caller read
// (Heads) once its conversations were live (Interest.Hold).
func (s *Service) BacklogTo(ctx context.Context, id Identity, heads map[string]int64, fn func(convID string, page []sb.Delivery) error) (map[string]int64, error) {
	// Acks not committed yet first, the store's cursors second: an ack
	// committed in between is seen by one of the two reads.
	late := s.acks.of(id.DeviceID)
	cursors, err := s.store.Cursors(ctx, id.DeviceID)
	if err != nil {
		return nil, err
	}
	for conv, seq := range late {
		cursors[conv] = max(cursors[conv], seq)
	}
	last := make(map[string]int64, len(heads))
	for _, conv := range slices.Sorted(maps.Keys(heads)) {
		head, after := heads[conv], cursors[conv]
		// A device that acked everything up to the head (most of them, on
		// a reconnect) has nothing to read: no query. A message committed
		// after Heads read the head comes live: callers subscribe
		// to live messages before they call Backlog.
		for after < head {
			page, err := s.store.Messages(ctx, id.DeviceID, conv, after, 500)
			if err != nil {
				return nil, err
			}
			if len(page) > 0 {
				if err := fn(conv, page); err != nil {
					return nil, err
				}
				after = page[len(page)-1].Seq
			}
			if len(page) < 500 {
				break
			}
		}
		last[conv] = max(after, head)
	}
	return last, nil
}
