package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/sqlcore"
)

// AppendMessage assigns m.Seq and, when zero, m.SentAt, stores m and moves
// the conversation's head seq, all in one transaction, which it may share
// with concurrent calls (see append.go). A message with per-device
// ciphertexts has a row per recipient device; a shared one has none, only
// a new recipient epoch when its set is not the conversation's current one
// (internal/sqlcore/epochs.go).
// A client id the sender device already used returns the stored message
// (without its ciphertexts) and duplicate=true. An empty ClientID is never
// deduplicated.
func (s *Store) AppendMessage(ctx context.Context, m *switchboard.Message) (*switchboard.Message, bool, error) {
	in := sqlcore.NewAppendIn(m)
	out, err := s.appends.Do(ctx, in)
	return sqlcore.Appended("sqlite", in, out, err)
}

// AppendMessageAsync is AppendMessage without the wait.
func (s *Store) AppendMessageAsync(m *switchboard.Message, done func(*switchboard.Message, bool, error)) {
	in := sqlcore.NewAppendIn(m)
	s.appends.Go(in, func(out sqlcore.AppendOut, err error) { done(sqlcore.Appended("sqlite", in, out, err)) })
}

// nullString stores "" as NULL, which the UNIQUE (sender_device_id, client_id)
// constraint lets repeat.
func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

// messagesQuery is the union of what the device has rows for (per-device
// ciphertexts) and the shared messages of the epochs it is in, each side
// at most ?4 rows in seq order, so the merge sorts at most 2*?4 rows.
//
// The shared side starts from the device's range of shared_recipients in
// the conversation, from the epoch that holds seq ?3+1 on: each row is an
// epoch, whose end is the next epoch's from_seq (one probe of the epochs'
// key), and the epoch's messages are one range of the messages' key. So
// the epochs the device is not in, and the messages of theirs, are never
// read. CROSS JOIN keeps the epochs as the outer loop; ordered by epoch
// then seq, which is seq order (epochs do not overlap), the loops deliver
// rows in order and stop at the limit without sorting.
const messagesQuery = `WITH e AS (
		SELECT r.from_seq, coalesce((SELECT min(n.from_seq) FROM shared_epochs n
				WHERE n.conversation_id = ?2 AND n.from_seq > r.from_seq), 9223372036854775807) AS to_seq
		FROM shared_recipients r
		WHERE r.device_id = ?1 AND r.conversation_id = ?2
			AND r.from_seq >= coalesce((SELECT max(n.from_seq) FROM shared_epochs n
				WHERE n.conversation_id = ?2 AND n.from_seq <= ?3 + 1), 0)
	)
	SELECT * FROM (SELECT m.seq, m.sender_user_id, m.sender_device_id, m.sent_at,
			coalesce(c.ciphertext, m.shared_ciphertext), m.event
		FROM message_ciphertexts c
		JOIN messages m ON m.conversation_id = c.conversation_id AND m.seq = c.seq
		WHERE c.device_id = ?1 AND c.conversation_id = ?2 AND c.seq > ?3
		ORDER BY c.seq LIMIT ?4)
	UNION ALL
	SELECT * FROM (SELECT m.seq, m.sender_user_id, m.sender_device_id, m.sent_at, m.shared_ciphertext, NULL
		FROM e CROSS JOIN messages m
		WHERE m.conversation_id = ?2 AND m.seq > ?3 AND m.seq >= e.from_seq AND m.seq < e.to_seq
			AND m.shared_ciphertext IS NOT NULL AND m.sender_device_id <> ?1
		ORDER BY e.from_seq, m.seq LIMIT ?4)
	ORDER BY 1 LIMIT ?4`

// Messages returns what deviceID receives in the conversation after
// afterSeq, ascending, at most limit (none when limit <= 0).
func (s *Store) Messages(ctx context.Context, deviceID, conversationID string, afterSeq int64, limit int) ([]switchboard.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.r.QueryContext(ctx, messagesQuery, deviceID, conversationID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: messages of %s for %s: %w", conversationID, deviceID, err)
	}
	defer rows.Close()
	var ds []switchboard.Delivery
	for rows.Next() {
		d := switchboard.Delivery{ConversationID: conversationID}
		var sentAt int64
		if err := rows.Scan(&d.Seq, &d.SenderUserID, &d.SenderDeviceID, &sentAt, &d.Ciphertext, &d.Event); err != nil {
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
