package redisstate

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// SessionTTL is how long a token lookup stays cached: it bounds how long a
// revocation whose cache update failed (Redis unreachable at that moment)
// can go unseen by a node that reads the cache.
const SessionTTL = time.Minute

// Keys: sb:sess:<token hash> holds "user\ndevice\nexpires-ms"; the device's
// cached token hashes are the set sb:devsess:{<device>}, so a revocation can
// drop them; sb:revoked:{<device>} is the revocation's tombstone, which
// keeps a lookup that read the store before the revocation from caching the
// token after it. The device's two keys share the hash tag {<device>}: on a
// Redis Cluster they are in one slot, and one script reads and drops them
// together. A token's own key is found by its hash alone (a lookup knows no
// device), so its slot is its own: a revocation drops the token entries by
// slot (rueidis.MDel), after the script.
func sessKey(hash []byte) string        { return "sb:sess:" + hex.EncodeToString(hash) }
func devSessKey(device string) string   { return "sb:devsess:{" + device + "}" }
func tombstoneKey(device string) string { return "sb:revoked:{" + device + "}" }

// SessionGet returns the cached session of a token hash; ok is false on a
// miss.
func (s *State) SessionGet(ctx context.Context, tokenHash []byte) (userID, deviceID string, expires time.Time, ok bool, err error) {
	var v string
	err = s.do(ctx, func(ctx context.Context) error {
		var err error
		v, err = s.client.Do(ctx, s.client.B().Get().Key(sessKey(tokenHash)).Build()).ToString()
		return err
	})
	if rueidis.IsRedisNil(err) {
		return "", "", time.Time{}, false, nil
	}
	if err != nil {
		return "", "", time.Time{}, false, fmt.Errorf("redisstate: session get: %w", err)
	}
	parts := strings.Split(v, "\n")
	if len(parts) != 3 {
		return "", "", time.Time{}, false, fmt.Errorf("redisstate: session get: malformed entry")
	}
	ms, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", "", time.Time{}, false, fmt.Errorf("redisstate: session get: malformed expiry")
	}
	return parts[0], parts[1], time.UnixMilli(ms), true, nil
}

// SessionPut caches a session the store returned for an active device. It
// lists the token under its device first and checks for the device's
// tombstone last: a revocation either sees the token in the list (and drops
// it) or has left its tombstone before this check (and the entry is dropped
// here).
func (s *State) SessionPut(ctx context.Context, tokenHash []byte, userID, deviceID string, expires time.Time) error {
	ttl := min(SessionTTL, time.Until(expires))
	if ttl <= 0 {
		return nil
	}
	key, list := sessKey(tokenHash), devSessKey(deviceID)
	var revoked int64
	err := s.do(ctx, func(ctx context.Context) error {
		for _, r := range s.client.DoMulti(ctx,
			s.client.B().Sadd().Key(list).Member(key).Build(),
			s.client.B().Pexpire().Key(list).Milliseconds(SessionTTL.Milliseconds()).Build(),
			s.client.B().Set().Key(key).Value(userID+"\n"+deviceID+"\n"+strconv.FormatInt(expires.UnixMilli(), 10)).
				Px(ttl).Build(),
		) {
			if err := r.Error(); err != nil {
				return err
			}
		}
		var err error
		revoked, err = s.client.Do(ctx, s.client.B().Exists().Key(tombstoneKey(deviceID)).Build()).AsInt64()
		return err
	})
	if err == nil && revoked > 0 {
		err = s.do(ctx, func(ctx context.Context) error {
			return s.client.Do(ctx, s.client.B().Del().Key(key).Build()).Error()
		})
	}
	if err != nil {
		return fmt.Errorf("redisstate: session put: %w", err)
	}
	return nil
}

// revoke leaves a device's tombstone, then takes and drops the list of its
// cached tokens, in one step on the device's slot.
//
// KEYS[1] the tombstone, KEYS[2] the list; ARGV[1] the tombstone's TTL ms.
// Returns the listed token keys.
var revoke = rueidis.NewLuaScript(`
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
local keys = redis.call('SMEMBERS', KEYS[2])
redis.call('DEL', KEYS[2])
return keys`)

// SessionRevoke drops every cached token of a device (revoked in the
// store just before): a tombstone first, then the entries listed under it.
func (s *State) SessionRevoke(ctx context.Context, deviceID string) error {
	err := s.do(ctx, func(ctx context.Context) error {
		keys, err := revoke.Exec(ctx, s.client, []string{tombstoneKey(deviceID), devSessKey(deviceID)},
			[]string{strconv.FormatInt((2 * SessionTTL).Milliseconds(), 10)}).AsStrSlice()
		if err != nil {
			return err
		}
		// The list is gone: an entry whose DEL fails here lives out its TTL.
		for _, err := range rueidis.MDel(s.client, ctx, keys) {
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("redisstate: session revoke %s: %w", deviceID, err)
	}
	return nil
}
