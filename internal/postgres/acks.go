package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/switchboard-chat/switchboard/internal/groupcommit"
)

// Acks are group-committed like appends: every device of a busy group acks
// every few hundred milliseconds, and one transaction (one fsync) per ack
// made acks the node's most frequent commit, queueing sends behind them for
// pool connections. Concurrent Ack calls queue and one statement upserts
// the batch; each call still returns only after the commit that holds it.

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
		return fmt.Errorf("postgres: ack %s in %s: %w", deviceID, conversationID, err)
	}
	return nil
}

// commitAcks is the ack committer. A batch that fails (a device or
// conversation that is gone: the foreign keys) is retried one ack at a
// time, so that only the culprit fails.
func (s *Store) commitAcks(batch []*ackJob) {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	groupcommit.Split(batch, func(jobs []*ackJob) error { return s.ackBatch(ctx, jobs) })
}

const upsertCursors = `INSERT INTO cursors (device_id, conversation_id, acked_seq)
	SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
	ON CONFLICT (device_id, conversation_id) DO UPDATE SET acked_seq = GREATEST(cursors.acked_seq, EXCLUDED.acked_seq)`

// ackBatch upserts the highest seq of each (device, conversation) of the
// batch, in key order (one row may not be updated twice by one statement,
// and two nodes' batches lock rows in the same order).
func (s *Store) ackBatch(ctx context.Context, batch []*ackJob) error {
	type key struct{ device, conv string }
	latest := make(map[key]int64, len(batch))
	for _, j := range batch {
		k := key{j.In.device, j.In.conv}
		if seq, ok := latest[k]; !ok || j.In.seq > seq {
			latest[k] = j.In.seq
		}
	}
	keys := make([]key, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int { return cmp.Or(cmp.Compare(a.device, b.device), cmp.Compare(a.conv, b.conv)) })
	devices, convs, seqs := make([]string, len(keys)), make([]string, len(keys)), make([]int64, len(keys))
	for i, k := range keys {
		devices[i], convs[i], seqs[i] = k.device, k.conv, latest[k]
	}
	_, err := s.pool.Exec(ctx, upsertCursors, devices, convs, seqs)
	return err
}
