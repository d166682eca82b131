package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/switchboard-chat/switchboard/internal/sqlcore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the advisory lock key that nodes migrating at once queue
// on. Any constant works as long as nothing else in the database uses it.
const migrationLock int64 = 0x73626d6967726174 // "sbmigrat"

// Migrate brings the schema up to date, applying each missing migration in
// version order in its own transaction. It is safe to run on every start and
// from several nodes at once: each transaction first takes a transaction-scoped
// advisory lock (released by commit or rollback, never leaked to a pooled
// connection) and then checks again whether its version is applied.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := sqlcore.ReadMigrations(migrationFiles)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	// Under the lock too: two concurrent CREATE TABLE IF NOT EXISTS can
	// both find no table and one then fails.
	err = s.locked(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	for _, m := range ms {
		err := s.locked(ctx, func(tx pgx.Tx) error {
			var done bool
			err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version).Scan(&done)
			if err != nil || done {
				return err
			}
			// No arguments: pgx sends it with the simple protocol, which
			// allows the several statements of a file.
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migrate %s: %w", m.Name, err)
		}
	}
	return nil
}

// locked runs fn in a transaction holding the migration lock.
func (s *Store) locked(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return err
		}
		return fn(tx)
	})
}
