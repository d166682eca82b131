package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/switchboard-chat/switchboard"
)

// MarkRead moves userID's read mark up to seq (never down): one upsert
// that changes the row only upward and says whether it did.
func (s *Store) MarkRead(ctx context.Context, userID, conversationID string, seq int64) (read int64, moved bool, err error) {
	err = s.pool.QueryRow(ctx, `INSERT INTO reads (conversation_id, user_id, read_seq) VALUES ($1, $2, $3)
		ON CONFLICT (conversation_id, user_id) DO UPDATE SET read_seq = EXCLUDED.read_seq
		WHERE reads.read_seq < EXCLUDED.read_seq
		RETURNING read_seq`, conversationID, userID, seq).Scan(&read)
	if errors.Is(err, pgx.ErrNoRows) { // not moved: read the mark as it is
		err = s.pool.QueryRow(ctx, `SELECT read_seq FROM reads WHERE conversation_id = $1 AND user_id = $2`,
			conversationID, userID).Scan(&read)
		if err != nil {
			return 0, false, fmt.Errorf("postgres: mark read %s in %s: %w", userID, conversationID, err)
		}
		return read, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("postgres: mark read %s in %s: %w", userID, conversationID, err)
	}
	return read, true, nil
}

// Receipts reads each member's marks: the highest cursor of their devices, their read mark.
func (s *Store) Receipts(ctx context.Context, conversationID string) ([]switchboard.Receipt, error) {
	rows, err := s.pool.Query(ctx, `SELECT m.user_id,
		coalesce((SELECT max(c.acked_seq) FROM cursors c JOIN devices d ON d.id = c.device_id
			WHERE c.conversation_id = m.conversation_id AND d.user_id = m.user_id), 0),
		coalesce(r.read_seq, 0)
		FROM members m LEFT JOIN reads r ON r.conversation_id = m.conversation_id AND r.user_id = m.user_id
		WHERE m.conversation_id = $1 ORDER BY m.user_id`, conversationID)
	if err != nil {
		return nil, fmt.Errorf("postgres: receipts of %s: %w", conversationID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (switchboard.Receipt, error) {
		var rc switchboard.Receipt
		err := r.Scan(&rc.UserID, &rc.Delivered, &rc.Read)
		return rc, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: receipts of %s: %w", conversationID, err)
	}
	return out, nil
}

// SetReadReceipts turns userID's read receipts on or off.
func (s *Store) SetReadReceipts(ctx context.Context, userID string, on bool) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET read_receipts = $1 WHERE id = $2`, on, userID)
	if err != nil {
		return fmt.Errorf("postgres: set read receipts of %s: %w", userID, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: set read receipts of %s: %w", userID, switchboard.ErrNotFound)
	}
	return nil
}

// ReadReceiptsOff returns those of users who turned read receipts off.
func (s *Store) ReadReceiptsOff(ctx context.Context, users []string) ([]string, error) {
	if len(users) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT id FROM users WHERE NOT read_receipts AND id = ANY ($1)`, users)
	if err != nil {
		return nil, fmt.Errorf("postgres: read receipts off: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: read receipts off: %w", err)
	}
	return out, nil
}
