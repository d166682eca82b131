package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/switchboard-chat/switchboard/internal/groupcommit"
)

// Acks are group-committed like appends: every device of a busy group acks
// every few hundred milliseconds, and with one transaction (one WAL fsync)
// per ack they held the single writer connection more often than sends.
// Concurrent Ack calls queue and one transaction upserts the batch; each
// call still returns only after the commit that holds it.

// ackIn is one Ack call.
type ackIn struct {
	device, conv string
	seq          int64
}

type ackJob = groupcommit.Job[ackIn, struct{}]

func newAckQueue(s *Store) *groupcommit.Queue[ackIn, struct{}] {
	return groupcommit.New(groupcommit.Config[ackIn]{MaxBatch: 2048}, s.commitAcks)
}

// Ack moves the device's cursor in the conversation up to seq (never down).
func (s *Store) Ack(ctx context.Context, deviceID, conversationID string, seq int64) error {
	if _, err := s.acks.Do(ctx, ackIn{deviceID, conversationID, seq}); err != nil {
		return fmt.Errorf("sqlite: ack %s in %s: %w", deviceID, conversationID, err)
	}
	return nil
}

// commitAcks is the ack committer. A batch that fails (a device or
// conversation that is gone: the foreign keys) is retried one ack at a
// time, so that only the culprit fails.
func (s *Store) commitAcks(batch []*ackJob) {
	ctx := context.Background()
	groupcommit.Split(batch, func(jobs []*ackJob) error { return s.ackBatch(ctx, jobs) })
}

const upsertCursor = `INSERT INTO cursors (device_id, conversation_id, acked_seq) VALUES (?, ?, ?)
	ON CONFLICT (device_id, conversation_id) DO UPDATE SET acked_seq = max(acked_seq, excluded.acked_seq)`

// ackBatch upserts every ack of the batch in one transaction.
func (s *Store) ackBatch(ctx context.Context, batch []*ackJob) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, upsertCursor)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, j := range batch {
			if _, err := st.ExecContext(ctx, j.In.device, j.In.conv, j.In.seq); err != nil {
				return err
			}
		}
		return nil
	})
}
