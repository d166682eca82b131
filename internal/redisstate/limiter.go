package redisstate

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// gcra is the generic cell rate algorithm on one key: the key holds the
// theoretical arrival time (TAT, µs on Redis's own clock, so that nodes'
// clocks do not matter). A request of n units is allowed when
// TAT + n*T - burst*T <= now, and then moves TAT on by n*T; otherwise it
// waits that difference and nothing is spent. That is exactly a token
// bucket of burst units refilled at one per T (chat.MemoryLimiter's
// behaviour), held in one number with a TTL, decided in one round trip.
//
// KEYS[1] the bucket; ARGV: T (µs per unit), burst (units), n (units).
// Returns 0 (allowed) or the wait in µs.
var gcra = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local T, burst, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new = tat + n * T
local wait = new - burst * T - now
if wait > 0 then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000) + 1)
return 0`)

// Take spends n units of key's bucket (rate units a second, burst units at
// most) under limit name, or returns how long until they are there. It has
// chat.Limiter's meaning with the bucket spelled out.
func (s *State) Take(ctx context.Context, name, key string, rate, burst, n float64) (time.Duration, error) {
	if rate <= 0 || math.IsInf(rate, 0) {
		return 0, fmt.Errorf("redisstate: take %s: rate %v", name, rate)
	}
	perUnit := 1e6 / rate // µs
	var wait int64
	err := s.do(ctx, func(ctx context.Context) error {
		var err error
		wait, err = gcra.Exec(ctx, s.client, []string{"sb:lim:" + name + ":" + key},
			[]string{strconv.FormatFloat(perUnit, 'f', 3, 64), strconv.FormatFloat(burst, 'f', -1, 64),
				strconv.FormatFloat(n, 'f', -1, 64)}).AsInt64()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("redisstate: take %s: %w", name, err)
	}
	return time.Duration(wait) * time.Microsecond, nil
}

// defaultLease is how long a hold stays in Redis after the last refresh of
// its node: a node that dies holding sockets frees their slots after it.
const defaultLease = time.Minute

// holdKey is one hold of this node.
type holdKey struct{ name, key, holder string }

// hold admits holder@node into the sorted set of key (score: the lease's
// end, Redis's clock, ms) unless it already has max distinct holders, a
// holder already in (from any node) always getting in again. Expired
// members go first.
//
// KEYS[1] the set; ARGV: member (holder@node), holder, max, lease ms.
var hold = rueidis.NewLuaScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local seen, n = {}, 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local h = string.match(m, '^(.*)@[^@]*$') or m
  if not seen[h] then seen[h] = true; n = n + 1 end
end
if not seen[ARGV[2]] and n >= tonumber(ARGV[3]) then return 0 end
local lease = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + lease, ARGV[1])
redis.call('PEXPIRE', KEYS[1], lease)
return 1`)

// Hold has chat.Limiter's meaning: it adds holder to key's set under limit
// name unless the set has max distinct holders across the cluster.
func (s *State) Hold(ctx context.Context, name, key, holder string, max int) (bool, error) {
	if strings.Contains(holder, "@") {
		return false, fmt.Errorf("redisstate: hold %s: holder %q has an @", name, holder)
	}
	k := holdKey{name, key, holder}
	s.mu.Lock()
	if s.held[k] > 0 {
		s.held[k]++ // this node holds it already: its member is in the set
		s.mu.Unlock()
		return true, nil
	}
	// Not under the lock: holds of other keys do not wait for this round
	// trip. A release of the same key racing it may remove the member the
	// script just added; the next refresh adds it back.
	s.mu.Unlock()
	var ok int64
	err := s.do(ctx, func(ctx context.Context) error {
		var err error
		ok, err = hold.Exec(ctx, s.client, []string{holdSet(name, key)},
			[]string{holder + "@" + s.node, holder, strconv.Itoa(max), strconv.FormatInt(s.lease.Milliseconds(), 10)}).AsInt64()
		return err
	})
	if err != nil {
		return false, fmt.Errorf("redisstate: hold %s: %w", name, err)
	}
	if ok == 1 {
		s.mu.Lock()
		s.held[k]++
		s.mu.Unlock()
	}
	return ok == 1, nil
}

// Release undoes one Hold; the member leaves the set with this node's last.
func (s *State) Release(ctx context.Context, name, key, holder string) error {
	k := holdKey{name, key, holder}
	s.mu.Lock()
	n := s.held[k]
	switch {
	case n > 1:
		s.held[k]--
	case n == 1:
		delete(s.held, k)
	}
	s.mu.Unlock()
	if n != 1 {
		return nil // still held here, or never (held while Redis was down: counted on the node)
	}
	err := s.do(context.WithoutCancel(ctx), func(ctx context.Context) error {
		return s.client.Do(ctx, s.client.B().Zrem().Key(holdSet(name, key)).Member(holder+"@"+s.node).Build()).Error()
	})
	if err != nil {
		// The member expires with its lease.
		return fmt.Errorf("redisstate: release %s: %w", name, err)
	}
	return nil
}

func holdSet(name, key string) string { return "sb:hold:" + name + ":" + key }

// refreshHolds renews the lease of every hold of this node three times per
// lease, in one pipeline, until Close.
func (s *State) refreshHolds() {
	defer close(s.done)
	t := time.NewTicker(s.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.mu.Lock()
		cmds := make(rueidis.Commands, 0, 2*len(s.held))
		for k := range s.held {
			set := holdSet(k.name, k.key)
			// GT: only ever extend; a lease is Redis-clock ms, and this node's
			// clock is close enough for a renewal a third of a lease early.
			end := float64(time.Now().Add(s.lease).UnixMilli())
			cmds = append(cmds, s.client.B().Zadd().Key(set).Gt().ScoreMember().ScoreMember(end, k.holder+"@"+s.node).Build(),
				s.client.B().Pexpire().Key(set).Milliseconds(s.lease.Milliseconds()).Build())
		}
		s.mu.Unlock()
		if len(cmds) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.lease/3)
		s.calls.Add(1)
		for _, r := range s.client.DoMulti(ctx, cmds...) {
			if r.Error() != nil {
				s.errors.Add(1)
				break
			}
		}
		cancel()
	}
}
