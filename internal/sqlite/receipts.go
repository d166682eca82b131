package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/switchboard-chat/switchboard"
)

// MarkRead moves userID's read mark up to seq (never down).
func (s *Store) MarkRead(ctx context.Context, userID, conversationID string, seq int64) (read int64, moved bool, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT read_seq FROM reads WHERE conversation_id = ? AND user_id = ?`,
			conversationID, userID).Scan(&read)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if seq <= read {
			return nil
		}
		read, moved = seq, true
		_, err = tx.ExecContext(ctx, `INSERT INTO reads (conversation_id, user_id, read_seq) VALUES (?, ?, ?)
			ON CONFLICT (conversation_id, user_id) DO UPDATE SET read_seq = max(read_seq, excluded.read_seq)`,
			conversationID, userID, seq)
		return err
	})
	if err != nil {
		return 0, false, fmt.Errorf("sqlite: mark read %s in %s: %w", userID, conversationID, err)
	}
	return read, moved, nil
}

// Receipts reads each member's marks: the highest cursor of their devices, their read mark.
func (s *Store) Receipts(ctx context.Context, conversationID string) ([]switchboard.Receipt, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT m.user_id,
		coalesce((SELECT max(c.acked_seq) FROM cursors c JOIN devices d ON d.id = c.device_id
			WHERE c.conversation_id = m.conversation_id AND d.user_id = m.user_id), 0),
		coalesce(r.read_seq, 0)
		FROM members m LEFT JOIN reads r ON r.conversation_id = m.conversation_id AND r.user_id = m.user_id
		WHERE m.conversation_id = ? ORDER BY m.user_id`, conversationID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: receipts of %s: %w", conversationID, err)
	}
	defer rows.Close()
	var out []switchboard.Receipt
	for rows.Next() {
		var r switchboard.Receipt
		if err := rows.Scan(&r.UserID, &r.Delivered, &r.Read); err != nil {
			return nil, fmt.Errorf("sqlite: receipts of %s: %w", conversationID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: receipts of %s: %w", conversationID, err)
	}
	return out, nil
}

// SetReadReceipts turns userID's read receipts on or off.
func (s *Store) SetReadReceipts(ctx context.Context, userID string, on bool) error {
	res, err := s.w.ExecContext(ctx, `UPDATE users SET read_receipts = ? WHERE id = ?`, on, userID)
	if err != nil {
		return fmt.Errorf("sqlite: set read receipts of %s: %w", userID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("sqlite: set read receipts of %s: %w", userID, switchboard.ErrNotFound)
	}
	return nil
}

// ReadReceiptsOff returns those of users who turned read receipts off.
func (s *Store) ReadReceiptsOff(ctx context.Context, users []string) ([]string, error) {
	if len(users) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(users)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM users
		WHERE read_receipts = 0 AND id IN (SELECT value FROM json_each(?))`, string(list))
	if err != nil {
		return nil, fmt.Errorf("sqlite: read receipts off: %w", err)
	}
	return collectStrings(rows, "read receipts off")
}
