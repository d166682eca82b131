package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	"github.com/switchboard-chat/switchboard/internal/sqlcore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate brings the schema up to date, applying each missing migration in
// version order in its own transaction. It is safe to run on every start
// and from several processes at once: each transaction takes the write lock
// first (BEGIN IMMEDIATE) and checks again whether its version is applied.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := sqlcore.ReadMigrations(migrationFiles)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	_, err = s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`)
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	for _, m := range ms {
		if err := s.apply(ctx, m); err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", m.Name, err)
		}
	}
	return nil
}

func (s *Store) apply(ctx context.Context, m sqlcore.Migration) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var done int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&done)
		if err != nil || done > 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, micros(time.Now()))
		return err
	})
}
