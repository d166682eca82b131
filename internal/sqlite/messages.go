package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-chat/switchboard"
)

// AppendMessage assigns m.Seq and, when zero, m.SentAt, stores m with one
// row per recipient device and moves the conversation's head seq, all in
// one transaction. A client id the sender device already used returns the
// stored message (without its ciphertexts) and duplicate=true. An empty
// ClientID is never deduplicated.
func (s *Store) AppendMessage(ctx context.Context, m *switchboard.Message) (*switchboard.Message, bool, error) {
	sentAt := m.SentAt.UTC().Truncate(time.Microsecond)
	if m.SentAt.IsZero() {
		sentAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	var seq int64
	var dup *switchboard.Message
	err := s.write(ctx, func(tx *sql.Tx) error {
		// Writes are serialized, so looking first cannot race with another append.
		var err error
		if dup, err = duplicate(ctx, tx, m); err != nil || dup != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `UPDATE conversations SET head_seq = head_seq + 1 WHERE id = ? RETURNING head_seq`,
			m.ConversationID).Scan(&seq)
		if err != nil {
			return notFound(err)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO messages
			(conversation_id, seq, sender_user_id, sender_device_id, client_id, sent_at, shared_ciphertext)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			m.ConversationID, seq, m.SenderUserID, m.SenderDeviceID, nullString(m.ClientID), micros(sentAt), m.Shared)
		if err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO message_ciphertexts (conversation_id, seq, device_id, ciphertext)
			VALUES (?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for deviceID, ct := range m.Ciphertexts {
			if _, err := stmt.ExecContext(ctx, m.ConversationID, seq, deviceID, ct); err != nil {
				return fmt.Errorf("ciphertext for %s: %w", deviceID, err)
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("sqlite: append message to %s: %w", m.ConversationID, err)
	case dup != nil:
		return dup, true, nil
	}
	m.Seq, m.SentAt = seq, sentAt
	return m, false, nil
}

// duplicate returns the message m.SenderDeviceID already stored under
// m.ClientID, or nil.
func duplicate(ctx context.Context, tx *sql.Tx, m *switchboard.Message) (*switchboard.Message, error) {
	if m.ClientID == "" {
		return nil, nil
	}
	d := switchboard.Message{SenderDeviceID: m.SenderDeviceID, ClientID: m.ClientID}
	var sentAt int64
	err := tx.QueryRowContext(ctx, `SELECT conversation_id, seq, sender_user_id, sent_at, shared_ciphertext
		FROM messages WHERE sender_device_id = ? AND client_id = ?`, m.SenderDeviceID, m.ClientID).
		Scan(&d.ConversationID, &d.Seq, &d.SenderUserID, &sentAt, &d.Shared)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look for a duplicate: %w", err)
	}
	d.SentAt = fromMicros(sentAt)
	return &d, nil
}

// nullString stores "" as NULL, which the UNIQUE (sender_device_id, client_id)
// constraint lets repeat.
func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

// Messages returns what deviceID receives in the conversation after
// afterSeq, ascending, at most limit (none when limit <= 0).
func (s *Store) Messages(ctx context.Context, deviceID, conversationID string, afterSeq int64, limit int) ([]switchboard.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT m.seq, m.sender_user_id, m.sender_device_id, m.sent_at,
		COALESCE(c.ciphertext, m.shared_ciphertext)
		FROM message_ciphertexts c
		JOIN messages m ON m.conversation_id = c.conversation_id AND m.seq = c.seq
		WHERE c.device_id = ? AND c.conversation_id = ? AND c.seq > ?
		ORDER BY c.seq LIMIT ?`, deviceID, conversationID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: messages of %s for %s: %w", conversationID, deviceID, err)
	}
	defer rows.Close()
	var ds []switchboard.Delivery
	for rows.Next() {
		d := switchboard.Delivery{ConversationID: conversationID}
		var sentAt int64
		if err := rows.Scan(&d.Seq, &d.SenderUserID, &d.SenderDeviceID, &sentAt, &d.Ciphertext); err != nil {
			return nil, fmt.Errorf("sqlite: messages of %s for %s: %w", conversationID, deviceID, err)
		}
		d.SentAt = fromMicros(sentAt)
		ds = append(ds, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: messages of %s for %s: %w", conversationID, deviceID, err)
	}
	return ds, nil
}

// Ack moves the device's cursor in the conversation up to seq, never down.
func (s *Store) Ack(ctx context.Context, deviceID, conversationID string, seq int64) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO cursors (device_id, conversation_id, acked_seq) VALUES (?, ?, ?)
		ON CONFLICT (device_id, conversation_id) DO UPDATE SET acked_seq = max(acked_seq, excluded.acked_seq)`,
		deviceID, conversationID, seq)
	if err != nil {
		return fmt.Errorf("sqlite: ack %s in %s: %w", deviceID, conversationID, err)
	}
	return nil
}

// Cursors returns the acked seq per conversation of the device.
func (s *Store) Cursors(ctx context.Context, deviceID string) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT conversation_id, acked_seq FROM cursors WHERE device_id = ?`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: cursors of %s: %w", deviceID, err)
	}
	defer rows.Close()
	cursors := make(map[string]int64)
	for rows.Next() {
		var conv string
		var seq int64
		if err := rows.Scan(&conv, &seq); err != nil {
			return nil, fmt.Errorf("sqlite: cursors of %s: %w", deviceID, err)
		}
		cursors[conv] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: cursors of %s: %w", deviceID, err)
	}
	return cursors, nil
}
