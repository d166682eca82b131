package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/switchboard-chat/switchboard"
)

// A read that may lag (switchboard.MayLag) goes to a streaming replica
// when one is healthy: it answered the last health check, and it has
// replayed everything the primary had committed at most MaxLag ago.
//
// Lag is measured on WAL positions, not on pg_last_xact_replay_timestamp
// (which, on a primary with nothing to commit, grows although the replica
// misses nothing): every check first reads the primary's WAL position
// (pg_current_wal_insert_lsn: not the write position, pg_current_wal_lsn,
// which with synchronous_commit=off can be behind commits that have
// already returned) and keeps it with the time the check began, then
// reads each replica's replayed position (pg_last_wal_replay_lsn). A
// replica whose position is at or past a sample has every commit that
// completed before that sample's time: that time is what the replica
// covers, and now minus it is its lag. A replica paused
// (pg_wal_replay_pause) while the primary writes stops covering more and
// is dropped one check after its lag passes MaxLag.
//
// Reads of one's own writes: this node remembers when it last wrote for
// a key (a user's conversations and devices); a read with that key uses a
// replica only if the replica covers that time. A history page is checked
// instead against the conversation's head on the primary (Messages), which
// holds across nodes.

// replica is one streaming replica and what the checks last learned of it.
type replica struct {
	name    string        // the pool's label in metrics: replica-0, replica-1, ...
	addr    string        // host:port, for logs
	pool    *pgxpool.Pool // reads (traced: counted in queries)
	check   *pgxpool.Pool // health checks, one connection, not counted
	queries queryCounter

	healthy atomic.Bool
	covered atomic.Int64 // unix ns: every commit on the primary before it is replayed here
	lag     atomic.Int64 // ns, at the last check
}

// sample is the primary's WAL position read by a check that began at t.
type sample struct {
	t   int64 // unix ns
	lsn int64
}

// replicaSet is the store's replicas, their health checker, and the
// times this node last wrote per key.
type replicaSet struct {
	primary *pgxpool.Pool // the primary's health-check pool (not counted)
	list    []*replica
	next    atomic.Uint64 // round robin
	maxLag  time.Duration
	every   time.Duration
	log     *slog.Logger

	samples   []sample // the checker's only
	fallbacks atomic.Int64

	mu     sync.Mutex
	writes map[string]int64 // key -> unix ns after this node's last write of it

	started    bool // run is running: close stops it
	stop, done chan struct{}
}

// openReplicas connects to every replica (a replica down at start is not an
// error: it is unhealthy until it answers) and runs the first check before
// it returns, so that reads use the replicas at once.
func openReplicas(ctx context.Context, primaryURL string, cfg Config) (*replicaSet, error) {
	rs := &replicaSet{maxLag: cfg.MaxLag, every: cfg.CheckEvery, log: cfg.Logger,
		writes: make(map[string]int64), stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	if rs.primary, err = checkPool(ctx, primaryURL); err != nil {
		return nil, err
	}
	for i, u := range cfg.Replicas {
		r := &replica{name: fmt.Sprintf("replica-%d", i)}
		pc, err := pgxpool.ParseConfig(u)
		if err == nil {
			r.addr = fmt.Sprintf("%s:%d", pc.ConnConfig.Host, pc.ConnConfig.Port)
			pc.ConnConfig.Tracer = &r.queries
			r.pool, err = pgxpool.NewWithConfig(ctx, pc)
		}
		if err == nil {
			r.check, err = checkPool(ctx, u)
		}
		if err != nil {
			if r.pool != nil {
				r.pool.Close()
			}
			rs.close()
			return nil, fmt.Errorf("postgres: replica %d: %w", i, err)
		}
		rs.list = append(rs.list, r)
	}
	rs.check()
	rs.started = true
	go rs.run()
	return rs, nil
}

// checkPool is a one-connection pool for health checks, kept apart so
// that checks are not counted as queries and never wait behind reads.
func checkPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	pc.MaxConns, pc.MinConns = 1, 0
	return pgxpool.NewWithConfig(ctx, pc)
}

func (rs *replicaSet) run() {
	defer close(rs.done)
	t := time.NewTicker(rs.every)
	defer t.Stop()
	for {
		select {
		case <-rs.stop:
			return
		case <-t.C:
			rs.check()
		}
	}
}

// check samples the primary's WAL position, then each replica's replayed
// one, and sets each replica's health.
func (rs *replicaSet) check() {
	ctx, cancel := context.WithTimeout(context.Background(), max(rs.every, time.Second))
	defer cancel()
	t0 := time.Now()
	var lsn, block, segment int64
	if err := rs.primary.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint,
			current_setting('wal_block_size')::bigint, pg_size_bytes(current_setting('wal_segment_size'))`).
		Scan(&lsn, &block, &segment); err == nil {
		rs.samples = append(rs.samples, sample{t0.UnixNano(), recordsEnd(lsn, block, segment)})
		// Enough samples to measure a lag of twice the bound; past that the
		// replica is unhealthy whatever its exact lag.
		if keep := int(2*rs.maxLag/rs.every) + 4; len(rs.samples) > keep {
			rs.samples = append(rs.samples[:0], rs.samples[len(rs.samples)-keep:]...)
		}
	}
	// With no new sample (the primary did not answer) the replicas' coverage
	// cannot grow, so they turn unhealthy after MaxLag, and the reads go to
	// the primary, which fails them as it fails everything else.
	var wg sync.WaitGroup
	for _, r := range rs.list {
		wg.Go(func() { rs.checkReplica(ctx, r) })
	}
	wg.Wait()

	// Forget writes every replica has long covered (a healthy one covers
	// at least now - MaxLag - every); a replica that covers less is not used.
	old := time.Now().Add(-2*rs.maxLag - 2*rs.every).UnixNano()
	rs.mu.Lock()
	for k, t := range rs.writes {
		if t < old {
			delete(rs.writes, k)
		}
	}
	rs.mu.Unlock()
}

// recordsEnd is where the records before an insert position end. They end
// at the position itself, except on a page that nothing was inserted into
// yet: the insert position then points past the page's header (24 bytes,
// 40 on a segment's first page), and the last record ended at the page's
// start, which is all a replica can replay. Without this, a primary left
// idle on a page boundary would make every replica look behind.
func recordsEnd(lsn, block, segment int64) int64 {
	const shortHeader, longHeader = 24, 40 // SizeOfXLogShortPHD, SizeOfXLogLongPHD
	switch {
	case segment > 0 && lsn%segment == longHeader:
		return lsn - longHeader
	case block > 0 && lsn%block == shortHeader && lsn%segment != shortHeader:
		return lsn - shortHeader
	}
	return lsn
}

func (rs *replicaSet) checkReplica(ctx context.Context, r *replica) {
	var replay *int64
	err := r.check.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint`).Scan(&replay)
	if err == nil && replay == nil {
		err = errors.New("not a standby (pg_last_wal_replay_lsn is NULL)")
	}
	if err != nil {
		rs.setHealth(r, false, "check failed", "err", err)
		return
	}
	for i := len(rs.samples) - 1; i >= 0; i-- {
		if s := rs.samples[i]; s.lsn <= *replay {
			if s.t > r.covered.Load() {
				r.covered.Store(s.t)
			}
			break
		}
	}
	lag := time.Duration(time.Now().UnixNano() - r.covered.Load())
	r.lag.Store(int64(lag))
	if lag > rs.maxLag {
		rs.setHealth(r, false, "lagging", "lag", lag.Round(time.Millisecond), "max", rs.maxLag)
		return
	}
	rs.setHealth(r, true, "healthy", "lag", lag.Round(time.Millisecond))
}

// setHealth logs a change of health, not every check.
func (rs *replicaSet) setHealth(r *replica, ok bool, why string, args ...any) {
	if r.healthy.Swap(ok) != ok {
		level := slog.LevelWarn
		if ok {
			level = slog.LevelInfo
		}
		rs.log.Log(context.Background(), level, "postgres replica "+why, append([]any{"replica", r.name, "addr", r.addr}, args...)...)
	}
}

// wrote records that this node committed a write of keys just now (after
// the commit returned).
func (rs *replicaSet) wrote(keys ...string) {
	if rs == nil {
		return
	}
	now := time.Now().UnixNano()
	rs.mu.Lock()
	for _, k := range keys {
		rs.writes[k] = now
	}
	rs.mu.Unlock()
}

// pick returns a healthy replica, round robin, that covers this node's
// last write of keys, or nil: ctx not marked MayLag, no replicas, or none
// fit (counted as a fallback).
func (rs *replicaSet) pick(ctx context.Context, keys []string) *replica {
	if rs == nil || !switchboard.LagAllowed(ctx) {
		return nil
	}
	var newest int64
	if len(keys) > 0 {
		rs.mu.Lock()
		for _, k := range keys {
			newest = max(newest, rs.writes[k])
		}
		rs.mu.Unlock()
	}
	n := uint64(len(rs.list))
	start := rs.next.Add(1)
	for i := range n {
		if r := rs.list[(start+i)%n]; r.healthy.Load() && r.covered.Load() > newest {
			return r
		}
	}
	rs.fallbacks.Add(1)
	return nil
}

func (rs *replicaSet) close() {
	if rs == nil {
		return
	}
	if rs.started {
		close(rs.stop)
		<-rs.done
	}
	for _, r := range rs.list {
		r.pool.Close()
		r.check.Close()
	}
	if rs.primary != nil {
		rs.primary.Close()
	}
}

// errBehind says a replica's page may miss what the primary has: read the
// primary instead (not a failure of the replica).
var errBehind = errors.New("replica behind the primary for this read")

// read runs fn on a replica picked for ctx and keys, else on the primary.
// A replica that fails is marked unhealthy until its next check and fn runs
// again on the primary, so a replica going down fails no request; fn must
// therefore only read, and start its result afresh on each call.
func (s *Store) read(ctx context.Context, keys []string, fn func(q *pgxpool.Pool, replica bool) error) error {
	if r := s.replicas.pick(ctx, keys); r != nil {
		err := fn(r.pool, true)
		if err == nil || ctx.Err() != nil {
			return err
		}
		if !errors.Is(err, errBehind) {
			s.replicas.setHealth(r, false, "read failed", "err", err)
		}
		s.replicas.fallbacks.Add(1)
	}
	return fn(s.pool, false)
}

// queryCounter is a pgx tracer that counts the statements a pool runs.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *queryCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	c.n.Add(int64(d.Batch.Len()))
	return ctx
}

func (c *queryCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *queryCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}
