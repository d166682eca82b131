// Package redisstate keeps in Redis what the nodes of a cluster share
// besides the bus: the abuse limits' counters (limiter.go: a GCRA bucket
// per key, one script call per decision; holder sets with leases for the
// socket limits) and the session cache (sessions.go: token lookups, with
// PostgreSQL as the truth and revocation dropping a device's entries
// everywhere at once).
//
// It names no type of internal/chat: cmd/switchboard fits its methods to
// chat.Limiter and chat.SessionCache. Every call is bounded by a short
// timeout, so a Redis that hangs costs a decision at most that long; the
// callers then count on their node (chat.FallbackLimiter) or read the store.
//
// It runs on one Redis or on a Redis Cluster (OpenConfig) with the same
// calls: each script and each multi-key command touches the keys of one
// hash slot only (a bucket, a holder set, a device's token list and
// tombstone under the hash tag {device}); a pipeline may span slots, which
// the client splits.
package redisstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
	"github.com/switchboard-chat/switchboard/internal/rediscore"
)

// callTimeout bounds one call to Redis: a limit decision or a cache lookup
// waits no longer for an unresponsive Redis before its caller falls back.
const callTimeout = 300 * time.Millisecond

// State is a connection to the Redis the nodes share. It is safe for
// concurrent use.
type State struct {
	client rueidis.Client
	node   string // this process, in hold members: holds of two nodes never mix

	calls, errors atomic.Int64

	mu    sync.Mutex
	held  map[holdKey]int // this node's holds, by count
	lease time.Duration   // how long a hold lives in Redis without a refresh
	stop  chan struct{}
	done  chan struct{}
}

// Config says which Redis the nodes share: one Redis or a Redis Cluster.
type Config struct {
	// URL is a single Redis: redis://[user:password@]host:port/db.
	URL string
	// Cluster, instead of URL, lists seed addresses (host:port) of a Redis
	// Cluster. Every script and multi-key command keeps its keys in one
	// hash slot (hash tags), so the same calls run on both.
	Cluster []string
}

// Open connects to the Redis at url (redis://[user:password@]host:port/db)
// and checks it answers.
func Open(ctx context.Context, url string) (*State, error) {
	return OpenConfig(ctx, Config{URL: url})
}

// OpenConfig connects to the Redis or Redis Cluster of c and checks it
// answers.
func OpenConfig(ctx context.Context, c Config) (*State, error) { return open(ctx, c, defaultLease) }

func open(ctx context.Context, c Config, lease time.Duration) (*State, error) {
	opt, err := rediscore.Options(c.URL, c.Cluster)
	if err != nil {
		return nil, fmt.Errorf("redisstate: %w", err)
	}
	// One client either way: rueidis routes each command to its slot's
	// primary on a cluster (following MOVED after a failover) and splits a
	// pipeline by slot.
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redisstate: connect %s: %w", opt.InitAddress, err)
	}
	if len(c.Cluster) > 0 && client.Mode() != rueidis.ClientModeCluster {
		client.Close()
		return nil, fmt.Errorf("redisstate: %s is not a Redis Cluster", strings.Join(c.Cluster, ","))
	}
	node := make([]byte, 8)
	_, _ = rand.Read(node)
	s := &State{client: client, node: hex.EncodeToString(node), held: make(map[holdKey]int),
		lease: lease, stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.Ping(ctx); err != nil {
		client.Close()
		return nil, err
	}
	go s.refreshHolds()
	return s, nil
}

// Ping checks Redis answers.
func (s *State) Ping(ctx context.Context) error {
	if err := s.client.Do(ctx, s.client.B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("redisstate: ping: %w", err)
	}
	return nil
}

// Close stops the refresh of this node's holds (they expire one lease
// later; a node stopping closes its sockets first) and disconnects.
func (s *State) Close() error {
	close(s.stop)
	<-s.done
	s.client.Close()
	return nil
}

// Stats counts calls to Redis and those that failed.
type Stats struct {
	Calls  int64
	Errors int64
}

// Stats returns the counts so far.
func (s *State) Stats() Stats { return Stats{Calls: s.calls.Load(), Errors: s.errors.Load()} }

// do runs one command with the call timeout, counting it.
func (s *State) do(ctx context.Context, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	s.calls.Add(1)
	err := fn(ctx)
	if err != nil && !rueidis.IsRedisNil(err) {
		s.errors.Add(1)
	}
	return err
}
