package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/switchboard-chat/switchboard"
)

// CreateUser stores u; a username taken in any case returns
// switchboard.ErrUsernameTaken.
func (s *Store) CreateUser(ctx context.Context, u *switchboard.User) error {
	// ON CONFLICT on the folded username alone (migration 0004 in SQLite, 0005
	// in PostgreSQL): a clash of ids stays a plain error.
	tag, err := s.pool.Exec(ctx, `INSERT INTO users (id, username, password_hash, created_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (lower(username)) DO NOTHING`,
		u.ID, u.Username, u.PasswordHash, u.CreatedAt)
	if err != nil {
		return fmt.Errorf("postgres: create user %s: %w", u.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: create user %q: %w", u.Username, switchboard.ErrUsernameTaken)
	}
	return nil
}

// UserByName returns the user with that username in any case.
func (s *Store) UserByName(ctx context.Context, username string) (*switchboard.User, error) {
	var u switchboard.User
	err := s.pool.QueryRow(ctx, `SELECT id, username, password_hash, created_at FROM users WHERE lower(username) = lower($1)`,
		username).Scan(&u.ID, &u.Username, &u.PasswordHash, &u.CreatedAt)
	if err != nil {
		return nil, fmt.Errorf("postgres: user %q: %w", username, notFound(err))
	}
	u.CreatedAt = u.CreatedAt.UTC()
	return &u, nil
}

// UserExists reports whether a user with that id exists.
func (s *Store) UserExists(ctx context.Context, userID string) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, userID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("postgres: user exists %s: %w", userID, err)
	}
	return ok, nil
}

// CreateDevice stores d and, unless sess is nil, its first session, in one
// transaction: both statements travel in one round trip.
func (s *Store) CreateDevice(ctx context.Context, d *switchboard.Device, sess *switchboard.Session) error {
	if sess != nil && (sess.DeviceID != d.ID || sess.UserID != d.UserID) {
		return fmt.Errorf("postgres: create device %s: session is for device %s of user %s, not this device of %s",
			d.ID, sess.DeviceID, sess.UserID, d.UserID)
	}
	const insertDevice = `INSERT INTO devices
		(id, user_id, name, kem, public_key, signing_key, created_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
	args := []any{d.ID, d.UserID, d.Name, d.KEM, orEmpty(d.PublicKey), orEmpty(d.SigningKey), d.CreatedAt, d.RevokedAt}
	var err error
	if sess == nil {
		_, err = s.pool.Exec(ctx, insertDevice, args...)
	} else {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			b.Queue(insertDevice, args...)
			queueSession(b, sess)
			return tx.SendBatch(ctx, b).Close()
		})
	}
	s.replicas.wrote(userKey(d.UserID))
	if err != nil {
		return fmt.Errorf("postgres: create device %s: %w", d.ID, err)
	}
	return nil
}

const deviceColumns = `d.id, d.user_id, d.name, d.kem, d.public_key, d.signing_key, d.created_at, d.revoked_at`

// scanDevice scans deviceColumns, after the columns in dest.
func scanDevice(row pgx.Row, dest ...any) (*switchboard.Device, error) {
	var d switchboard.Device
	dest = append(dest, &d.ID, &d.UserID, &d.Name, &d.KEM, &d.PublicKey, &d.SigningKey, &d.CreatedAt, &d.RevokedAt)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	// pgx returns times in the local zone.
	d.CreatedAt = d.CreatedAt.UTC()
	if d.RevokedAt != nil {
		t := d.RevokedAt.UTC()
		d.RevokedAt = &t
	}
	return &d, nil
}

// Device returns the device with that id, revoked or not.
func (s *Store) Device(ctx context.Context, deviceID string) (*switchboard.Device, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM devices d WHERE d.id = $1`, deviceID))
	if err != nil {
		return nil, fmt.Errorf("postgres: device %s: %w", deviceID, notFound(err))
	}
	return d, nil
}

// ActiveDevices returns the non-revoked devices of the given users, ordered
// by user id, then created_at, then device id. Under switchboard.MayLag it
// may read a replica that has this node's last device change of the users.
func (s *Store) ActiveDevices(ctx context.Context, userIDs ...string) ([]switchboard.Device, error) {
	if len(userIDs) == 0 {
		return nil, nil
	}
	var keys []string
	if s.replicas != nil && switchboard.LagAllowed(ctx) {
		keys = make([]string, len(userIDs))
		for i, u := range userIDs {
			keys[i] = userKey(u)
		}
	}
	var ds []switchboard.Device
	err := s.read(ctx, keys, func(q *pgxpool.Pool, _ bool) error {
		rows, err := q.Query(ctx, `SELECT `+deviceColumns+` FROM devices d
			WHERE d.user_id = ANY ($1) AND d.revoked_at IS NULL
			ORDER BY d.user_id, d.created_at, d.id`, userIDs)
		if err != nil {
			return err
		}
		ds, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (switchboard.Device, error) {
			d, err := scanDevice(row)
			if err != nil {
				return switchboard.Device{}, err
			}
			return *d, nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: active devices: %w", err)
	}
	return ds, nil
}

// RevokeDevice marks an active device of userID revoked and deletes its
// sessions, in one transaction.
func (s *Store) RevokeDevice(ctx context.Context, userID, deviceID string, at time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE devices SET revoked_at = $1
			WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL`, at, deviceID, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return switchboard.ErrNotFound
		}
		_, err = tx.Exec(ctx, `DELETE FROM sessions WHERE device_id = $1`, deviceID)
		return err
	})
	s.replicas.wrote(userKey(userID))
	if err != nil {
		return fmt.Errorf("postgres: revoke device %s of %s: %w", deviceID, userID, err)
	}
	return nil
}

// CreateSession stores another session of an existing device.
func (s *Store) CreateSession(ctx context.Context, sess *switchboard.Session) error {
	b := &pgx.Batch{}
	queueSession(b, sess)
	if err := s.pool.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("postgres: create session for device %s: %w", sess.DeviceID, err)
	}
	return nil
}

func queueSession(b *pgx.Batch, sess *switchboard.Session) {
	b.Queue(`INSERT INTO sessions (token_hash, user_id, device_id, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5)`,
		sess.TokenHash, sess.UserID, sess.DeviceID, sess.CreatedAt, sess.ExpiresAt)
}

// SessionByTokenHash returns the session and its device, which may be
// revoked: the caller decides what a revoked or expired session means.
func (s *Store) SessionByTokenHash(ctx context.Context, hash []byte) (*switchboard.Session, *switchboard.Device, error) {
	var sess switchboard.Session
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT s.token_hash, s.user_id, s.device_id, s.created_at, s.expires_at, `+
		deviceColumns+` FROM sessions s JOIN devices d ON d.id = s.device_id WHERE s.token_hash = $1`, hash),
		&sess.TokenHash, &sess.UserID, &sess.DeviceID, &sess.CreatedAt, &sess.ExpiresAt)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: session: %w", notFound(err))
	}
	sess.CreatedAt, sess.ExpiresAt = sess.CreatedAt.UTC(), sess.ExpiresAt.UTC()
	return &sess, d, nil
}
