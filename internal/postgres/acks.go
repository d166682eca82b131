package postgres

import (
	"context"

	"github.com/switchboard-chat/switchboard/internal/sqlcore"
)

// Acks are group-committed (sqlcore.AckQueue): one statement upserts a
// batch.

// Ack moves the device's cursor in the conversation up to seq (never down).
func (s *Store) Ack(ctx context.Context, deviceID, conversationID string, seq int64) error {
	return s.acks.Ack(ctx, deviceID, conversationID, seq)
}

const upsertCursors = `INSERT INTO cursors (device_id, conversation_id, acked_seq)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
	ON CONFLICT (device_id, conversation_id) DO UPDATE SET acked_seq = GREATEST(cursors.acked_seq, EXCLUDED.acked_seq)`

// writeAcks upserts a batch's acks, one per (device, conversation) in key
// order, with one statement.
func (s *Store) writeAcks(ctx context.Context, acks []sqlcore.Ack) error {
	devices, convs, seqs := make([]string, len(acks)), make([]string, len(acks)), make([]int64, len(acks))
	for i, a := range acks {
		devices[i], convs[i], seqs[i] = a.Device, a.Conv, a.Seq
	}
	_, err := s.pool.Exec(ctx, upsertCursors, devices, convs, seqs)
	return err
}
