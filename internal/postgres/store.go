// Package postgres implements switchboard.Store on PostgreSQL through pgx
// (pgxpool): the store shared by every node of a cluster.
//
// Message seqs are assigned by bumping conversations.head_seq under its row
// lock, which serializes the appends to one conversation (and only to that
// one), so seqs have no gap and no duplicate however many nodes append at
// once.
//
// Appends are group-committed (append.go): concurrent AppendMessage calls
// share one transaction, pipelined in two round trips, so a node pays one
// commit (one WAL flush) per batch rather than per message.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"hash/maphash"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/sqlcore"
)

var _ switchboard.Store = (*Store)(nil)

// Store is a switchboard.Store on a PostgreSQL database. It is safe for
// concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	appends []*sqlcore.AppendQueue // AppendMessage's lanes (append.go)
	seed    maphash.Seed           // picks a conversation's lane
	acks    *sqlcore.AckQueue      // Ack's batches (acks.go)
	timer   *queryTimer            // times every statement (querymetrics.go)

	observer sqlcore.Observer // called by each lane's committer

	queries  queryCounter // statements run on the primary's pool
	replicas *replicaSet  // nil without replicas (replicas.go)
}

// Config is what Open takes besides the primary's URL; zero values get the
// defaults in brackets.
type Config struct {
	// Replicas are URLs of streaming replicas of the primary: reads marked
	// switchboard.MayLag go to them (replicas.go) [none].
	Replicas []string
	// MaxLag is how far behind the primary a replica may be and still
	// serve reads [1 s].
	MaxLag time.Duration
	// CheckEvery is the pause between health checks [MaxLag / 4].
	CheckEvery time.Duration
	Logger     *slog.Logger // [slog.Default()]
}

func (c *Config) setDefaults() {
	if c.MaxLag <= 0 {
		c.MaxLag = time.Second
	}
	if c.CheckEvery <= 0 {
		c.CheckEvery = max(c.MaxLag/4, 10*time.Millisecond)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// OnAppended sets the commit observer (switchboard.Store).
func (s *Store) OnAppended(fn func(m *switchboard.Message)) { s.observer.OnAppended(fn) }

// Open connects to the database at url (postgres://user:pass@host:port/db?...;
// pool settings such as pool_max_conns go in the URL) and checks that it
// answers. Call Migrate before use.
func Open(ctx context.Context, url string) (*Store, error) {
	return open(ctx, url, lanes, Config{})
}

// OpenConfig is Open with read replicas and their settings.
func OpenConfig(ctx context.Context, url string, c Config) (*Store, error) {
	return open(ctx, url, lanes, c)
}

// open is OpenConfig with another number of lanes (benchmarks compare).
func open(ctx context.Context, url string, lanes int, c Config) (*Store, error) {
	c.setDefaults()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx leaves the password out of its errors; so do we, by not quoting url.
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	timer := newQueryTimer("primary")
	s := &Store{seed: maphash.MakeSeed(), timer: timer}
	cfg.ConnConfig.Tracer = multitracer.New(timer, &s.queries)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s.pool = pool
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	if len(c.Replicas) > 0 {
		if s.replicas, err = openReplicas(ctx, url, c); err != nil {
			pool.Close()
			return nil, err
		}
	}
	for range lanes {
		s.appends = append(s.appends, sqlcore.NewAppendQueue(s.commitAppends))
	}
	s.acks = sqlcore.NewAckQueue("postgres", batchTimeout, s.writeAcks)
	return s, nil
}

// Close waits for the appends already queued to be committed, refusing new
// ones, then closes every connection, waiting for those in use to be
// released.
func (s *Store) Close() error {
	for _, q := range s.appends {
		q.Close()
	}
	s.acks.Close()
	s.replicas.close()
	s.pool.Close()
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// orEmpty keeps a nil key from becoming NULL in a NOT NULL column.
func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// notFound wraps switchboard.ErrNotFound when err says no row matched.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return switchboard.ErrNotFound
	}
	return err
}

// Register adds the store's metrics to reg (the node's registry): its
// group-commit queues' batch sizes and commit latency, and its connection
// pool's use.
func (s *Store) Register(reg prometheus.Registerer) error {
	if err := sqlcore.RegisterQueues(reg, s.appends, s.acks); err != nil {
		return err
	}
	pool := func(name, help string, v func(*pgxpool.Stat) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help,
			ConstLabels: prometheus.Labels{"pool": "primary"}}, func() float64 { return v(s.pool.Stat()) })
	}
	if err := s.registerPools(reg); err != nil {
		return err
	}
	for _, c := range []prometheus.Collector{
		s.timer.vec,
		pool("switchboard_store_pool_connections", "Connections the node holds to PostgreSQL.",
			func(st *pgxpool.Stat) float64 { return float64(st.TotalConns()) }),
		pool("switchboard_store_pool_acquired", "Connections in use by a query or transaction.",
			func(st *pgxpool.Stat) float64 { return float64(st.AcquiredConns()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "switchboard_store_pool_wait_seconds_total",
			Help: "Time queries waited for a free connection of the pool.", ConstLabels: prometheus.Labels{"pool": "primary"}},
			func() float64 { return s.pool.Stat().AcquireDuration().Seconds() }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
