package chat

import (
	"context"
	"errors"
	"fmt"
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

// sessionCache wraps the configured cache with its failure log: a failing
// cache is reported when it starts failing, not on every request.
type sessionCache struct {
	c      SessionCache
	failed atomic.Bool
	hits   atomic.Int64
	misses atomic.Int64
}

func (s *Service) cacheFailed(what string, err error) {
	if !s.sessions.failed.Swap(true) {
		s.cfg.Logger.Warn("session cache failed; reading the store", "op", what, "err", err)
	}
}

func (s *Service) cacheAnswered() {
	if s.sessions.failed.Load() && s.sessions.failed.Swap(false) {
		s.cfg.Logger.Info("session cache answers again")
	}
}

// SessionCacheStats counts token lookups answered by the cache and those
// that read the store (switchboard_session_cache_{hits,misses}_total).
func (s *Service) SessionCacheStats() (hits, misses int64) {
	return s.sessions.hits.Load(), s.sessions.misses.Load()
}

// lookupSession returns the identity of a token hash: from the cache when
// it has it, else from the store (and then caches it).
func (s *Service) lookupSession(ctx context.Context, hash []byte) (Identity, error) {
	if c := s.sessions.c; c != nil {
		user, device, expires, ok, err := c.SessionGet(ctx, hash)
		switch {
		case err != nil:
			s.cacheFailed("get", err)
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
	if c := s.sessions.c; c != nil {
		if err := c.SessionPut(ctx, hash, sess.UserID, sess.DeviceID, sess.ExpiresAt); err != nil {
			s.cacheFailed("put", err)
		}
	}
	return Identity{UserID: sess.UserID, DeviceID: sess.DeviceID, ExpiresAt: sess.ExpiresAt}, nil
}

// forgetSessions drops a revoked device's cached tokens on every node.
func (s *Service) forgetSessions(ctx context.Context, deviceID string) {
	if c := s.sessions.c; c != nil {
		if err := c.SessionRevoke(context.WithoutCancel(ctx), deviceID); err != nil {
			// The entries expire within the cache's TTL; the nodes that read
			// the cache meanwhile still close the device's sockets (ctl.revoked).
			s.cfg.Logger.Error("session cache: dropping a revoked device's tokens failed", "device", deviceID, "err", err)
		}
	}
}
