package chat

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	sb "github.com/switchboard-chat/switchboard"
)

// SessionCache caches token lookups for the nodes of a cluster (Redis;
// internal/redisstate). The store stays the truth: a miss or a failing
// cache reads the store, and only sessions of active devices are cached.
// SessionRevoke must make every later SessionGet of the device's tokens
// miss, on every node, including a SessionPut racing it.
type SessionCache interface {
	SessionGet(ctx context.Context, tokenHash []byte) (userID, deviceID string, expires time.Time, ok bool, err error)
	SessionPut(ctx context.Context, tokenHash []byte, userID, deviceID string, expires time.Time) error
	SessionRevoke(ctx context.Context, deviceID string) error
}

// sessionCache wraps the configured cache with its failure log (when it
// starts failing, not on every request) and a pause: after a failure the
// cache is left alone for a second, so a hung Redis costs one call's
// timeout a second, not one per request.
type sessionCache struct {
	c         SessionCache
	downSince atomic.Int64 // unix ns of the last failure; 0 while it answers
	hits      atomic.Int64
	misses    atomic.Int64

	// Revocations whose cache entries could not be dropped (the cache
	// failed): dropped again once it answers, and until then a cached
	// session of theirs is not trusted here.
	mu      sync.Mutex
	pending map[string]bool
}

// cacheUsable reports whether to ask the cache now.
func (s *Service) cacheUsable() bool {
	if s.sessions.c == nil {
		return false
	}
	since := s.sessions.downSince.Load()
	return since == 0 || time.Since(time.Unix(0, since)) >= time.Second
}

func (s *Service) cacheFailed(what string, err error) {
	if s.sessions.downSince.Swap(time.Now().UnixNano()) == 0 {
		s.cfg.Logger.Warn("session cache failed; reading the store", "op", what, "err", err)
	}
}

func (s *Service) cacheAnswered() {
	if s.sessions.downSince.Load() != 0 && s.sessions.downSince.Swap(0) != 0 {
		s.cfg.Logger.Info("session cache answers again")
		go s.retryRevocations()
	}
}

// retryRevocations drops the cached tokens of the devices revoked while the
// cache failed.
func (s *Service) retryRevocations() {
	s.sessions.mu.Lock()
	devices := slices.Collect(maps.Keys(s.sessions.pending))
	s.sessions.mu.Unlock()
	for _, d := range devices {
		s.forgetSessions(context.Background(), d)
	}
}

// revocationPending reports whether deviceID was revoked here while the
// cache failed and its entries may still be there.
func (s *Service) revocationPending(deviceID string) bool {
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	return s.sessions.pending[deviceID]
}

// SessionCacheStats counts token lookups answered by the cache and those
// that read the store (switchboard_session_cache_{hits,misses}_total).
func (s *Service) SessionCacheStats() (hits, misses int64) {
	return s.sessions.hits.Load(), s.sessions.misses.Load()
}

// lookupSession returns the identity of a token hash: from the cache when
// it has it, else from the store (and then caches it).
func (s *Service) lookupSession(ctx context.Context, hash []byte) (Identity, error) {
	usable := s.cacheUsable()
	if usable {
		user, device, expires, ok, err := s.sessions.c.SessionGet(ctx, hash)
		switch {
		case err != nil:
			s.cacheFailed("get", err)
		case ok && s.revocationPending(device):
			// Revoked here while the cache failed: the store decides.
			s.cacheAnswered()
		case ok:
			s.cacheAnswered()
			s.sessions.hits.Add(1)
			if !s.cfg.Now().Before(expires) {
				return Identity{}, errUnauthorized
			}
			return Identity{UserID: user, DeviceID: device, ExpiresAt: expires}, nil
		default:
			s.cacheAnswered()
		}
	}
	if s.sessions.c != nil {
		s.sessions.misses.Add(1)
	}
	sess, dev, err := s.store.SessionByTokenHash(ctx, hash)
	if errors.Is(err, sb.ErrNotFound) {
		return Identity{}, errUnauthorized
	}
	if err != nil {
		return Identity{}, fmt.Errorf("authenticate: %w", err)
	}
	if dev.RevokedAt != nil || !s.cfg.Now().Before(sess.ExpiresAt) {
		return Identity{}, errUnauthorized
	}
	if usable {
		if err := s.sessions.c.SessionPut(ctx, hash, sess.UserID, sess.DeviceID, sess.ExpiresAt); err != nil {
			s.cacheFailed("put", err)
		}
	}
	return Identity{UserID: sess.UserID, DeviceID: sess.DeviceID, ExpiresAt: sess.ExpiresAt}, nil
}

// forgetSessions drops a revoked device's cached tokens on every node. If
// the cache fails, the device is remembered and dropped again once the
// cache answers (this node meanwhile reads the store for it; other nodes
// may accept the token from the cache until then or until the entry's TTL).
func (s *Service) forgetSessions(ctx context.Context, deviceID string) {
	c := s.sessions.c
	if c == nil {
		return
	}
	err := c.SessionRevoke(context.WithoutCancel(ctx), deviceID)
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	if err == nil {
		delete(s.sessions.pending, deviceID)
		return
	}
	s.cfg.Logger.Error("session cache: dropping a revoked device's tokens failed; will retry when it answers", "device", deviceID, "err", err)
	if s.sessions.pending == nil {
		s.sessions.pending = make(map[string]bool)
	}
	s.sessions.pending[deviceID] = true
	if s.sessions.downSince.Swap(time.Now().UnixNano()) == 0 {
		s.cfg.Logger.Warn("session cache failed; reading the store", "op", "revoke", "err", err)
	}
}
