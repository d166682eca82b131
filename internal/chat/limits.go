package chat

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// Names of the abuse limits. They name a limit in a Limiter (so two limits
// never share a bucket), in logs and in docs/security.md.
const (
	LimitLoginAccount     = "login.account"        // login attempts per username
	LimitLoginIP          = "login.ip"             // login attempts per client address
	LimitSignupIP         = "signup.ip"            // accounts created per client address
	LimitSendDevice       = "send.device"          // sends per device
	LimitSendConversation = "send.conversation"    // sends per conversation
	LimitDeviceBytes      = "bytes.device"         // inbound bytes (frames and request bodies) per device
	LimitSocketFrames     = "frames.socket"        // frames per socket (kept by the socket itself)
	LimitConnsIP          = "conns.ip"             // open sockets per client address
	LimitConnsUser        = "conns.user"           // open sockets (devices connected) per user
	LimitConvDevice       = "conversations.device" // conversations created per device
	LimitConvIP           = "conversations.ip"     // conversations created per client address
	LimitHistoryDevice    = "history.device"       // history pages read at once per device (held, not a rate)
	LimitHistoryNode      = "history.node"         // history pages read at once on the node (held, not a rate)
)

// Rate is N units per Per, enforced as a token bucket that holds N units and
// refills continuously at N/Per: a client may spend all N at once, then N per
// Per. In Config a zero N gets the default and a negative N is unlimited.
type Rate struct {
	N   int64
	Per time.Duration
}

// Unlimited is a Rate that never refuses.
var Unlimited = Rate{N: -1}

// On reports whether r limits anything.
func (r Rate) On() bool { return r.N > 0 && r.Per > 0 }

// Bucket is r as a token bucket.
func (r Rate) Bucket() Bucket {
	return Bucket{Rate: float64(r.N) / r.Per.Seconds(), Burst: float64(r.N)}
}

// String is the form ParseRate reads: "20/1h", "32MiB/1m", "off".
func (r Rate) String() string {
	if !r.On() {
		return "off"
	}
	n := strconv.FormatInt(r.N, 10)
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if r.N >= u.size && r.N%u.size == 0 {
			n = strconv.FormatInt(r.N/u.size, 10) + u.suffix
			break
		}
	}
	return n + "/" + shortDuration(r.Per)
}

func shortDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

// ParseRate reads "N/PERIOD" (N may end in KiB, MiB or GiB; PERIOD is a Go
// duration such as 1s, 1m, 1h). "0", "off" and "unlimited" are Unlimited.
func ParseRate(s string) (Rate, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "0", "off", "unlimited", "none":
		return Unlimited, nil
	}
	num, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rate{}, fmt.Errorf("rate %q: want N/PERIOD such as 20/1m, or 0 for unlimited", s)
	}
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if t, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = t, u.size
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return Rate{}, fmt.Errorf("rate %q: %q is not a count", s, num)
	}
	d, err := time.ParseDuration(strings.TrimSpace(per))
	if err != nil || d <= 0 {
		return Rate{}, fmt.Errorf("rate %q: %q is not a positive duration", s, per)
	}
	if n == 0 {
		return Unlimited, nil
	}
	return Rate{N: n * mult, Per: d}, nil
}

// Limits are the abuse limits (docs/security.md lists them with their flags).
// The sends of one device are Config.SendRate and SendBurst. Zero values get
// DefaultLimits; a negative value (Unlimited for a Rate) turns a limit off.
type Limits struct {
	LoginPerAccount     Rate // login attempts per username, known or not
	LoginPerIP          Rate // login attempts per client address
	SignupPerIP         Rate // accounts created per client address
	ConvPerDevice       Rate // conversations created per device
	ConvPerIP           Rate // conversations created per client address
	SendPerConversation Rate // sends into one conversation, from all its members
	FramesPerSocket     Rate // client frames per socket
	BytesPerDevice      Rate // bytes a device sends (frames and request bodies)
	ConnsPerIP          int  // open sockets per client address
	ConnsPerUser        int  // devices of one user connected at once
	DevicesPerUser      int  // active devices per user (a login past it gets too_many_devices)
	HistoryBytes        int  // ciphertext bytes of one history page
	HistoryPerDevice    int  // history pages one device reads at once
	HistoryPerNode      int  // history pages read at once on this node [4 x cores]
}

// DefaultLimits are generous for people and tight for scripts. A load test
// from many sockets per address or large busy groups needs some turned off
// (docs/security.md).
var DefaultLimits = Limits{
	LoginPerAccount:     Rate{20, time.Hour},
	LoginPerIP:          Rate{60, time.Minute},
	SignupPerIP:         Rate{10, time.Hour},
	ConvPerDevice:       Rate{100, time.Hour},
	ConvPerIP:           Rate{300, time.Hour},
	SendPerConversation: Rate{200, 2 * time.Second},
	FramesPerSocket:     Rate{200, 2 * time.Second},
	BytesPerDevice:      Rate{32 << 20, time.Minute},
	ConnsPerIP:          1000,
	ConnsPerUser:        20,
	DevicesPerUser:      20,
	HistoryBytes:        4 << 20,
	HistoryPerDevice:    2,
	HistoryPerNode:      4 * runtime.NumCPU(),
}

func (l *Limits) setDefaults() {
	rate := func(r *Rate, def Rate) {
		if r.N == 0 {
			*r = def
		}
	}
	count := func(n *int, def int) {
		if *n == 0 {
			*n = def
		}
	}
	d := DefaultLimits
	rate(&l.LoginPerAccount, d.LoginPerAccount)
	rate(&l.LoginPerIP, d.LoginPerIP)
	rate(&l.SignupPerIP, d.SignupPerIP)
	rate(&l.ConvPerDevice, d.ConvPerDevice)
	rate(&l.ConvPerIP, d.ConvPerIP)
	rate(&l.SendPerConversation, d.SendPerConversation)
	rate(&l.FramesPerSocket, d.FramesPerSocket)
	rate(&l.BytesPerDevice, d.BytesPerDevice)
	count(&l.ConnsPerIP, d.ConnsPerIP)
	count(&l.ConnsPerUser, d.ConnsPerUser)
	count(&l.DevicesPerUser, d.DevicesPerUser)
	count(&l.HistoryBytes, d.HistoryBytes)
	count(&l.HistoryPerDevice, d.HistoryPerDevice)
	count(&l.HistoryPerNode, d.HistoryPerNode)
}

// Bucket is a token bucket: at most Burst units, refilled at Rate units a second.
type Bucket struct {
	Rate  float64
	Burst float64
}

// Limiter keeps the counts behind the limits. One in-process implementation
// serves a node alone (MemoryLimiter); a cluster shares one through Redis, so
// a limit holds across nodes. Keys are opaque (a device id, a conversation id,
// an address); name keeps limits apart.
type Limiter interface {
	// Take spends n units of key's bucket under limit name when they are
	// there and returns 0; otherwise it spends nothing and returns how long
	// until they will be. n is at most b.Burst.
	Take(ctx context.Context, name, key string, b Bucket, n float64) (wait time.Duration, err error)
	// Hold adds holder to key's set under limit name unless the set already
	// has max distinct holders (a holder already in it always gets in again:
	// a reconnecting device is not refused by its own older socket). Every
	// Hold that returns true needs one Release.
	Hold(ctx context.Context, name, key, holder string, max int) (ok bool, err error)
	// Release undoes one Hold of holder; the holder leaves the set with its last release.
	Release(ctx context.Context, name, key, holder string) error
}

// Limits returns the service's limits, defaults filled in.
func (s *Service) Limits() Limits { return s.cfg.Limits }

// SessionExpired reports whether id's token has expired by the service's
// clock (a socket outlives the upgrade that checked it).
func (s *Service) SessionExpired(id Identity) bool {
	return !id.ExpiresAt.IsZero() && !s.cfg.Now().Before(id.ExpiresAt)
}

// rateOf returns the bucket of a named limit; ok is false for an unlimited one.
func (s *Service) rateOf(name string) (Bucket, bool) {
	var r Rate
	switch l := &s.cfg.Limits; name {
	case LimitSendDevice:
		if s.cfg.SendRate <= 0 || s.cfg.SendBurst <= 0 {
			return Bucket{}, false
		}
		return Bucket{Rate: s.cfg.SendRate, Burst: float64(s.cfg.SendBurst)}, true
	case LimitLoginAccount:
		r = l.LoginPerAccount
	case LimitLoginIP:
		r = l.LoginPerIP
	case LimitSignupIP:
		r = l.SignupPerIP
	case LimitConvDevice:
		r = l.ConvPerDevice
	case LimitConvIP:
		r = l.ConvPerIP
	case LimitSendConversation:
		r = l.SendPerConversation
	case LimitDeviceBytes:
		r = l.BytesPerDevice
	case LimitSocketFrames:
		r = l.FramesPerSocket
	default:
		panic("chat: unknown limit " + name)
	}
	return r.Bucket(), r.On()
}

// Allow spends n units of key under the named limit, or returns a
// rate_limited error saying when to retry. A limiter that fails (Redis down)
// lets the request through: limits protect capacity, they are not access control.
func (s *Service) Allow(ctx context.Context, name, key string, n int64) error {
	b, ok := s.rateOf(name)
	if !ok {
		return nil
	}
	wait, err := s.limiter.Take(ctx, name, key, b, min(float64(n), b.Burst))
	if err != nil {
		s.cfg.Logger.Warn("rate limiter failed; allowing", "limit", name, "err", err)
		return nil
	}
	if wait <= 0 {
		return nil
	}
	return RateLimited(name, wait)
}

// RateLimited is the rate_limited error of the named limit: 429 with
// Retry-After over HTTP, an error frame with retry_after_ms on a socket.
func RateLimited(name string, wait time.Duration) *sb.Error {
	e := sb.Errorf(sb.ERATELIMIT, wire.CodeRateLimited, "%s (%s); retry in %s", limitText[name], name, wait.Round(time.Millisecond))
	e.RetryAfter = wait
	return e
}

var limitText = map[string]string{
	LimitLoginAccount:     "too many logins to this account",
	LimitLoginIP:          "too many logins from this address",
	LimitSignupIP:         "too many accounts created from this address",
	LimitSendDevice:       "too many sends from this device",
	LimitSendConversation: "too many sends to this conversation",
	LimitDeviceBytes:      "too many bytes from this device",
	LimitSocketFrames:     "too many frames on this socket",
	LimitConnsIP:          "too many open connections from this address",
	LimitConnsUser:        "too many devices of this user connected",
	LimitConvDevice:       "too many conversations created by this device",
	LimitConvIP:           "too many conversations created from this address",
	LimitHistoryDevice:    "too many history reads of this device at once",
	LimitHistoryNode:      "too many history reads on this node at once",
}

// connRetry is the Retry-After of a refused connection: a socket slot frees
// only when another socket closes, which is not predictable.
const connRetry = 30 * time.Second

// HoldConn admits one socket of id from the client address ip ("" when the
// address is exempt from per-address limits) under the connection limits,
// or returns rate_limited. Every nil return needs one ReleaseConn with the
// same arguments when the socket closes.
func (s *Service) HoldConn(ctx context.Context, id Identity, ip string) error {
	if s.holdConn(ctx, LimitConnsUser, id.UserID, id.DeviceID, s.cfg.Limits.ConnsPerUser) {
		if s.holdConn(ctx, LimitConnsIP, ip, id.DeviceID, s.cfg.Limits.ConnsPerIP) {
			return nil
		}
		s.releaseConn(LimitConnsUser, id.UserID, id.DeviceID, s.cfg.Limits.ConnsPerUser)
		return RateLimited(LimitConnsIP, connRetry)
	}
	return RateLimited(LimitConnsUser, connRetry)
}

// ReleaseConn gives back what HoldConn took.
func (s *Service) ReleaseConn(id Identity, ip string) {
	s.releaseConn(LimitConnsUser, id.UserID, id.DeviceID, s.cfg.Limits.ConnsPerUser)
	s.releaseConn(LimitConnsIP, ip, id.DeviceID, s.cfg.Limits.ConnsPerIP)
}

// holdConn holds one slot; an unlimited limit or an empty key always admits,
// and so does a failing limiter (limits protect capacity, not access).
func (s *Service) holdConn(ctx context.Context, name, key, holder string, max int) bool {
	if max <= 0 || key == "" {
		return true
	}
	ok, err := s.limiter.Hold(ctx, name, key, holder, max)
	if err != nil {
		s.cfg.Logger.Warn("connection limiter failed; allowing", "limit", name, "err", err)
		return true
	}
	return ok
}

func (s *Service) releaseConn(name, key, holder string, max int) {
	if max <= 0 || key == "" {
		return
	}
	if err := s.limiter.Release(context.Background(), name, key, holder); err != nil {
		s.cfg.Logger.Warn("release connection slot", "limit", name, "err", err)
	}
}

// sendAllowed applies the send limits: per device, then per conversation.
func (s *Service) sendAllowed(ctx context.Context, id Identity, convID string) error {
	if err := s.Allow(ctx, LimitSendDevice, id.DeviceID, 1); err != nil {
		return err
	}
	return s.Allow(ctx, LimitSendConversation, convID, 1)
}

var errTooManyDevices = sb.Errorf(sb.ECONFLICT, wire.CodeTooManyDevices, "this account has the most active devices allowed; revoke one first")

// deviceRoom checks a login may add a device to user u.
func (s *Service) deviceRoom(ctx context.Context, userID string) error {
	max := s.cfg.Limits.DevicesPerUser
	if max <= 0 {
		return nil
	}
	devs, err := s.store.ActiveDevices(ctx, userID)
	if err != nil {
		return fmt.Errorf("login: count devices: %w", err)
	}
	if len(devs) >= max {
		e := *errTooManyDevices
		e.Message = fmt.Sprintf("this account has %d active devices, the most allowed; revoke one first", max)
		return &e
	}
	return nil
}
