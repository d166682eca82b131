// Package postgres implements switchboard.Store on PostgreSQL through pgx
// (pgxpool): the store shared by every node of a cluster.
//
// Message seqs are assigned by bumping conversations.head_seq with
// UPDATE ... RETURNING: the row lock it takes serializes the appends to one
// conversation (and only to that one), so seqs have no gap and no duplicate
// however many nodes append at once.
package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/switchboard-chat/switchboard"
)

var _ switchboard.Store = (*Store)(nil)

// Store is a switchboard.Store on a PostgreSQL database. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the database at url (postgres://user:pass@host:port/db?...;
// pool settings such as pool_max_conns go in the URL) and checks that it
// answers. Call Migrate before use.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx leaves the password out of its errors; so do we, by not quoting url.
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return &Store{pool: pool}, nil
}

// Close closes every connection, waiting for those in use to be released.
func (s *Store) Close() error {
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
