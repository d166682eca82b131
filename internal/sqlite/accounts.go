package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/switchboard-chat/switchboard"
)

// CreateUser stores u; a username taken in any case returns
// switchboard.ErrUsernameTaken.
func (s *Store) CreateUser(ctx context.Context, u *switchboard.User) error {
	// ON CONFLICT on the folded username alone (migration 0004 in SQLite, 0005
	// in PostgreSQL): a clash of ids stays a plain error.
	res, err := s.w.ExecContext(ctx, `INSERT INTO users (id, username, password_hash, created_at)
		VALUES (?, ?, ?, ?) ON CONFLICT (lower(username)) DO NOTHING`,
		u.ID, u.Username, u.PasswordHash, micros(u.CreatedAt))
	if err != nil {
		return fmt.Errorf("sqlite: create user %s: %w", u.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlite: create user %s: %w", u.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: create user %q: %w", u.Username, switchboard.ErrUsernameTaken)
	}
	return nil
}

// UserByName returns the user with that username in any case.
func (s *Store) UserByName(ctx context.Context, username string) (*switchboard.User, error) {
	var u switchboard.User
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT id, username, password_hash, created_at FROM users WHERE lower(username) = lower(?)`,
		username).Scan(&u.ID, &u.Username, &u.PasswordHash, &created)
	if err != nil {
		return nil, fmt.Errorf("sqlite: user %q: %w", username, notFound(err))
	}
	u.CreatedAt = fromMicros(created)
	return &u, nil
}

// UserExists reports whether a user with that id exists.
func (s *Store) UserExists(ctx context.Context, userID string) (bool, error) {
	var ok bool
	err := s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)`, userID).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("sqlite: user exists %s: %w", userID, err)
	}
	return ok, nil
}

// CreateDevice stores d and, unless sess is nil, its first session, in one
// transaction.
func (s *Store) CreateDevice(ctx context.Context, d *switchboard.Device, sess *switchboard.Session) error {
	if err := sessionOf(d, sess); err != nil {
		return fmt.Errorf("sqlite: create device %s: %w", d.ID, err)
	}
	var revoked sql.NullInt64
	if d.RevokedAt != nil {
		revoked = sql.NullInt64{Int64: micros(*d.RevokedAt), Valid: true}
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO devices
			(id, user_id, name, kem, public_key, signing_key, created_at, revoked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			d.ID, d.UserID, d.Name, d.KEM, orEmpty(d.PublicKey), orEmpty(d.SigningKey), micros(d.CreatedAt), revoked)
		if err != nil || sess == nil {
			return err
		}
		return insertSession(ctx, tx, sess)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create device %s: %w", d.ID, err)
	}
	return nil
}

// sessionOf checks that sess, if any, belongs to d.
func sessionOf(d *switchboard.Device, sess *switchboard.Session) error {
	if sess != nil && (sess.DeviceID != d.ID || sess.UserID != d.UserID) {
		return fmt.Errorf("session is for device %s of user %s, not this device of %s", sess.DeviceID, sess.UserID, d.UserID)
	}
	return nil
}

const deviceColumns = `d.id, d.user_id, d.name, d.kem, d.public_key, d.signing_key, d.created_at, d.revoked_at`

// scanDevice scans deviceColumns, after the columns in dest.
func scanDevice(row interface{ Scan(...any) error }, dest ...any) (*switchboard.Device, error) {
	var d switchboard.Device
	var created int64
	var revoked sql.NullInt64
	dest = append(dest, &d.ID, &d.UserID, &d.Name, &d.KEM, &d.PublicKey, &d.SigningKey, &created, &revoked)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	d.CreatedAt = fromMicros(created)
	if revoked.Valid {
		t := fromMicros(revoked.Int64)
		d.RevokedAt = &t
	}
	return &d, nil
}

// Device returns the device with that id, revoked or not.
func (s *Store) Device(ctx context.Context, deviceID string) (*switchboard.Device, error) {
	d, err := scanDevice(s.r.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices d WHERE d.id = ?`, deviceID))
	if err != nil {
		return nil, fmt.Errorf("sqlite: device %s: %w", deviceID, notFound(err))
	}
	return d, nil
}

// ActiveDevices returns the non-revoked devices of the given users, ordered
// by user id, then created_at, then device id.
func (s *Store) ActiveDevices(ctx context.Context, userIDs ...string) ([]switchboard.Device, error) {
	if len(userIDs) == 0 {
		return nil, nil
	}
	// One JSON array parameter instead of a placeholder per user: a big
	// group would otherwise build a new statement for every size.
	ids, err := json.Marshal(userIDs)
	if err != nil {
		return nil, fmt.Errorf("sqlite: active devices: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+deviceColumns+` FROM devices d
		WHERE d.user_id IN (SELECT value FROM json_each(?)) AND d.revoked_at IS NULL
		ORDER BY d.user_id, d.created_at, d.id`, string(ids))
	if err != nil {
		return nil, fmt.Errorf("sqlite: active devices: %w", err)
	}
	defer rows.Close()
	var ds []switchboard.Device
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: active devices: %w", err)
		}
		ds = append(ds, *d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: active devices: %w", err)
	}
	return ds, nil
}

// RevokeDevice marks an active device of userID revoked and deletes its
// sessions, in one transaction.
func (s *Store) RevokeDevice(ctx context.Context, userID, deviceID string, at time.Time) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE devices SET revoked_at = ?
			WHERE id = ? AND user_id = ? AND revoked_at IS NULL`, micros(at), deviceID, userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return switchboard.ErrNotFound
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM sessions WHERE device_id = ?`, deviceID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: revoke device %s of %s: %w", deviceID, userID, err)
	}
	return nil
}

// CreateSession stores another session of an existing device.
func (s *Store) CreateSession(ctx context.Context, sess *switchboard.Session) error {
	if err := insertSession(ctx, s.w, sess); err != nil {
		return fmt.Errorf("sqlite: create session for device %s: %w", sess.DeviceID, err)
	}
	return nil
}

func insertSession(ctx context.Context, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, sess *switchboard.Session) error {
	_, err := db.ExecContext(ctx, `INSERT INTO sessions (token_hash, user_id, device_id, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?)`,
		sess.TokenHash, sess.UserID, sess.DeviceID, micros(sess.CreatedAt), micros(sess.ExpiresAt))
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	return nil
}

// SessionByTokenHash returns the session and its device, which may be
// revoked: the caller decides what a revoked or expired session means.
func (s *Store) SessionByTokenHash(ctx context.Context, hash []byte) (*switchboard.Session, *switchboard.Device, error) {
	var sess switchboard.Session
	var created, expires int64
	d, err := scanDevice(s.r.QueryRowContext(ctx, `SELECT s.token_hash, s.user_id, s.device_id, s.created_at, s.expires_at, `+
		deviceColumns+` FROM sessions s JOIN devices d ON d.id = s.device_id WHERE s.token_hash = ?`, hash),
		&sess.TokenHash, &sess.UserID, &sess.DeviceID, &created, &expires)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: session: %w", notFound(err))
	}
	sess.CreatedAt, sess.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &sess, d, nil
}
