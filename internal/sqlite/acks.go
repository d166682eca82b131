package sqlite

import (
	"context"
	"database/sql"

	"github.com/switchboard-chat/switchboard/internal/sqlcore"
)

// Acks are group-committed (sqlcore.AckQueue): one transaction upserts a
// batch, so that acks do not hold the single writer connection more often
// than sends.

// Ack moves the device's cursor in the conversation up to seq (never down).
func (s *Store) Ack(ctx context.Context, deviceID, conversationID string, seq int64) error {
	return s.acks.Ack(ctx, deviceID, conversationID, seq)
}

const upsertCursor = `INSERT INTO cursors (device_id, conversation_id, acked_seq) VALUES (?, ?, ?)
	ON CONFLICT (device_id, conversation_id) DO UPDATE SET acked_seq = max(acked_seq, excluded.acked_seq)`

// writeAcks upserts a batch's acks in one transaction.
func (s *Store) writeAcks(ctx context.Context, acks []sqlcore.Ack) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, upsertCursor)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, a := range acks {
			if _, err := st.ExecContext(ctx, a.Device, a.Conv, a.Seq); err != nil {
				return err
			}
		}
		return nil
	})
}
