package sqlcore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/switchboard-chat/switchboard/internal/groupcommit"
)

// Acks are group-committed like appends: every device of a busy group acks
// every few hundred milliseconds, and one transaction (one fsync) per ack
// made acks a node's most frequent commit, holding the writer (SQLite) or
// queueing sends behind them for pool connections (PostgreSQL). Concurrent
// Ack calls queue and one transaction upserts the batch; each call still
// returns only after the commit that holds it.

// Ack is one cursor to move up to Seq.
type Ack struct {
	Device, Conv string
	Seq          int64
}

type ackJob = groupcommit.Job[Ack, struct{}]

// AckQueue batches a store's acks.
type AckQueue struct {
	q       *groupcommit.Queue[Ack, struct{}]
	store   string
	timeout time.Duration
	write   func(ctx context.Context, acks []Ack) error
}

// NewAckQueue returns the ack queue of store (its name, for errors). write
// upserts acks in one transaction, never moving a cursor down; it gets
// at most one ack per (device, conversation), the highest, in key order
// (one statement may not update a row twice, and two nodes' batches then
// lock rows in the same order). A commit gets timeout (0: none), so that a
// server that stopped answering does not hold the queue forever.
func NewAckQueue(store string, timeout time.Duration, write func(ctx context.Context, acks []Ack) error) *AckQueue {
	a := &AckQueue{store: store, timeout: timeout, write: write}
	a.q = groupcommit.New(groupcommit.Config[Ack]{MaxBatch: 2048}, a.commit)
	return a
}

// Ack moves the device's cursor in the conversation up to seq (never down),
// once the batch that holds it commits.
func (a *AckQueue) Ack(ctx context.Context, deviceID, conversationID string, seq int64) error {
	if _, err := a.q.Do(ctx, Ack{deviceID, conversationID, seq}); err != nil {
		return fmt.Errorf("%s: ack %s in %s: %w", a.store, deviceID, conversationID, err)
	}
	return nil
}

// Close waits for the acks already queued to be committed, refusing new ones.
func (a *AckQueue) Close() { a.q.Close() }

// commit is the ack committer. A batch that fails (a device or
// conversation that is gone: the foreign keys) is retried one ack at a
// time, so that only the culprit fails.
func (a *AckQueue) commit(batch []*ackJob) {
	ctx := context.Background()
	if a.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	groupcommit.Split(batch, func(jobs []*ackJob) error { return a.write(ctx, latest(jobs)) })
}

// latest returns the highest ack of each (device, conversation) of the
// jobs, in key order.
func latest(jobs []*ackJob) []Ack {
	acks := make([]Ack, len(jobs))
	for i, j := range jobs {
		acks[i] = j.In
	}
	slices.SortFunc(acks, func(a, b Ack) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Conv, b.Conv), -cmp.Compare(a.Seq, b.Seq))
	})
	// The first of each key is its highest.
	return slices.CompactFunc(acks, func(a, b Ack) bool { return a.Device == b.Device && a.Conv == b.Conv })
}
