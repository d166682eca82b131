package redisbus

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// The Bus is also the small compare-and-swap store that call signalling
// (internal/calls) keeps its call records in, so that every node sharing
// this Redis sees one state per call. Keys live under keyPrefix.

// keyPrefix keeps the records apart from anything else in the Redis.
const keyPrefix = "switchboard:"

// casScript sets KEYS[1] to ARGV[2] (PX ARGV[3]), or deletes it when ARGV[2]
// is empty, if its value is ARGV[1] (empty: if it has none); 1 if it did.
// Values are never empty, so empty can mean none.
var casScript = rueidis.NewLuaScript(`
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if cur then return 0 end
elseif cur ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return 1`)

// Get returns the value at key, or nil when there is none.
func (b *Bus) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := b.client.Do(ctx, b.client.B().Get().Key(keyPrefix+key).Build()).AsBytes()
	if rueidis.IsRedisNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redisbus: get: %w", err)
	}
	return v, nil
}

// CompareAndSwap sets key to new, living ttl, if its value is old (nil: if
// there is none), in one Lua script so that no other node's write comes
// between the compare and the set; a nil new deletes key.
func (b *Bus) CompareAndSwap(ctx context.Context, key string, old, new []byte, ttl time.Duration) (bool, error) {
	ms := max(ttl.Milliseconds(), 1)
	n, err := casScript.Exec(ctx, b.client, []string{keyPrefix + key},
		[]string{string(old), string(new), strconv.FormatInt(ms, 10)}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("redisbus: compare and swap: %w", err)
	}
	return n == 1, nil
}
