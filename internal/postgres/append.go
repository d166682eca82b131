package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/groupcommit"
	"github.com/switchboard-chat/switchboard/internal/sqlcore"
)

// Group commit. Concurrent AppendMessage calls queue (groupcommit), in one
// of a few lanes picked by conversation, and each lane's committer stores a
// batch of its queue in one transaction, in two round trips whatever the
// batch's size:
//
//  1. BEGIN; lock the batch's conversations in id order, reading their head
//     seqs and current recipient epochs; read the client ids of the batch
//     already stored, and the owner of every device the batch names.
//  2. Set the new head seqs and epochs; insert every new epoch and its
//     recipients, every message, then every ciphertext row, each kind with
//     one statement over arrays; COMMIT.
//
// Between the two, sqlcore.Decide decides each message's fate, as for
// SQLite (internal/sqlcore/decide.go); here it also checks the devices
// against their owners (sqlcore.ErrUnknownDevice), since migration 0004
// no foreign key checks them. Locking in id order keeps two
// nodes' batches from deadlocking on each other's conversations (two lanes
// never share one). Two batches that insert the same client ids in
// opposite orders can still deadlock on the unique index: the server
// aborts one (40P01), which is then retried message by message.
//
// If the server refuses the batch for what one message holds (a unique
// violation when another node stored the same client id after step 1, a
// value a column refuses, a deadlock), the batch is rolled back and its
// messages are appended one by one (each a batch of one, the same three
// steps), so that only the culprit fails. An error that is no message's fault (a lost connection) fails every caller of the batch: the
// commit's outcome may be unknown, and only the caller can retry safely,
// with the same client id.

// batchTimeout bounds the commit of one batch, fallback included.
const batchTimeout = 30 * time.Second

// lanes is how many queues split a node's appends by conversation, each
// with its own committer and connection, so that that many batches commit
// at once without contending for a conversation's lock: one server backend
// runs a batch on one core. More lanes use more of the server's cores but
// make smaller batches (more commits) of the same load.
const lanes = 2

// AppendStats counts the batches AppendMessage has committed so far and
// the calls in them.
func (s *Store) AppendStats() groupcommit.Stats {
	var st groupcommit.Stats
	for _, q := range s.appends {
		qs := q.Stats()
		st.Batches += qs.Batches
		st.Jobs += qs.Jobs
	}
	return st
}

// lane returns the queue of a conversation's appends.
func (s *Store) lane(convID string) *sqlcore.AppendQueue {
	return s.appends[maphash.String(s.seed, convID)%uint64(len(s.appends))]
}

// commitAppends is the committer: it sets every job's result, then tells
// the observer what was stored.
func (s *Store) commitAppends(batch []*sqlcore.AppendJob) {
	defer s.observer.Notify(batch)
	// No caller's context: one caller giving up must not fail the others.
	// The deadline is for a server that stopped answering: its lane (and
	// the callers queued on it, who cannot withdraw once in a batch) must
	// not wait forever.
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	err := s.appendBatch(ctx, batch)
	switch {
	case err == nil:
	case blame(err):
		for _, j := range batch {
			s.appendAlone(ctx, j)
		}
	default:
		for _, j := range batch {
			j.Err = err
		}
	}
}

// appendAlone appends the message of j in a batch of its own: the path of
// a batch that failed because of one of its messages. A unique violation
// is another node that stored the same client id since the read: once
// more, the read finds it, and j gets it as a duplicate.
func (s *Store) appendAlone(ctx context.Context, j *sqlcore.AppendJob) {
	one := []*sqlcore.AppendJob{j}
	err := s.appendBatch(ctx, one)
	if uniqueViolation(err) {
		err = s.appendBatch(ctx, one)
	}
	if err != nil {
		j.Err = err
	}
}

// blame reports whether err is the server refusing what a message holds,
// so that appending the batch's messages one by one will fail only the
// culprit. The server answered, so nothing of the batch was committed.
func blame(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) < 2 {
		return false
	}
	switch pgErr.Code[:2] {
	case "22", // data exception: a value the column refuses
		"23", // integrity: unique (a client id raced in), foreign key (an epoch's unknown device)
		"40": // transaction rollback: deadlock, serialization
		return true
	}
	return false
}

func uniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

const (
	// FOR NO KEY UPDATE is what UPDATE would take: it does not block the
	// foreign key checks of acks and members that reference the row.
	lockConversations = `SELECT id, head_seq, shared_set_hash, shared_from_seq
		FROM conversations WHERE id = ANY ($1) ORDER BY id FOR NO KEY UPDATE`
	// One probe of the unique index per client id. LIMIT 1 (the key is
	// unique anyway) keeps the subquery from being flattened into a join
	// that the planner, guessing at the size of the arrays, may run as a
	// hash join over every message.
	storedClientIDs = `SELECT m.sender_device_id, m.client_id, m.conversation_id, m.seq,
		m.sender_user_id, m.sent_at, m.shared_ciphertext
		FROM unnest($1::text[], $2::text[]) AS k (device_id, client_id)
		CROSS JOIN LATERAL (SELECT * FROM messages m
			WHERE m.sender_device_id = k.device_id AND m.client_id = k.client_id LIMIT 1) m`
	// id = ANY: the conversations to update are found through the primary
	// key, whatever join the planner picks.
	setHeads = `UPDATE conversations c
		SET head_seq = v.head_seq, shared_set_hash = v.set_hash, shared_from_seq = v.from_seq
		FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bigint[]) AS v (id, head_seq, set_hash, from_seq)
		WHERE c.id = ANY ($1) AND c.id = v.id`
	insertMessages = `INSERT INTO messages
		(conversation_id, seq, sender_user_id, sender_device_id, client_id, sent_at, shared_ciphertext, event)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
			$6::timestamptz[], $7::bytea[], $8::bytea[])`
)

// appendBatch stores the batch in one transaction, in its three steps
// (read, sqlcore.Decide, write), and, once it is committed, sets every
// job's result. On error it sets none.
func (s *Store) appendBatch(ctx context.Context, batch []*sqlcore.AppendJob) (err error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	defer func() {
		// Left in an open or failed transaction, the connection would be
		// dropped by the pool on release; end the transaction instead.
		if err != nil && conn.Conn().PgConn().TxStatus() != 'I' {
			conn.Exec(ctx, "ROLLBACK")
		}
	}()
	snap, err := readBatch(ctx, conn.Conn(), batch)
	if err != nil {
		return err
	}
	p := sqlcore.Decide(batch, snap)
	if err := writePlan(ctx, conn.Conn(), batch, p); err != nil {
		return err
	}
	for i, j := range batch {
		j.Out, j.Err = p.Results[i].Out, p.Results[i].Err
	}
	return nil
}

// readBatch is round trip 1: BEGIN, and what Decide needs, the batch's
// conversations locked.
func readBatch(ctx context.Context, conn *pgx.Conn, batch []*sqlcore.AppendJob) (sqlcore.Snapshot, error) {
	convs, keys := sqlcore.Keys(batch)
	devices := sqlcore.Devices(batch)
	snap := sqlcore.Snapshot{
		Heads:  make(map[string]sqlcore.Head, len(convs)),
		Stored: make(map[sqlcore.ClientKey]*switchboard.Message),
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(lockConversations, convs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var h sqlcore.Head
			if err := rows.Scan(&id, &h.Seq, &h.SetHash, &h.From); err != nil {
				return err
			}
			snap.Heads[id] = h
		}
		return rows.Err()
	})
	if len(keys) > 0 {
		senders, clientIDs := make([]string, len(keys)), make([]string, len(keys))
		for i, k := range keys {
			senders[i], clientIDs[i] = k.Device, k.Client
		}
		b.Queue(storedClientIDs, senders, clientIDs).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var d switchboard.Message
				err := rows.Scan(&d.SenderDeviceID, &d.ClientID, &d.ConversationID, &d.Seq,
					&d.SenderUserID, &d.SentAt, &d.Shared)
				if err != nil {
					return err
				}
				d.SentAt = d.SentAt.UTC()
				snap.Stored[sqlcore.ClientKey{Device: d.SenderDeviceID, Client: d.ClientID}] = &d
			}
			return rows.Err()
		})
	}
	b.Queue(deviceOwners, devices).Query(func(rows pgx.Rows) (err error) {
		snap.Owners, err = scanOwners(rows, len(devices))
		return err
	})
	return snap, conn.SendBatch(ctx, b).Close()
}

// writePlan is round trip 2: the plan's rows, each kind with one statement
// over arrays, and COMMIT.
func writePlan(ctx context.Context, conn *pgx.Conn, batch []*sqlcore.AppendJob, p sqlcore.Plan) error {
	b := &pgx.Batch{}
	if len(p.Messages) > 0 {
		n := len(p.Heads)
		ids, newHeads, froms, hashes := make([]string, n), make([]int64, n), make([]int64, n), make([][]byte, n)
		for i, h := range p.Heads {
			ids[i], newHeads[i], froms[i], hashes[i] = h.ID, h.Seq, h.From, h.SetHash
		}
		b.Queue(setHeads, ids, newHeads, hashes, froms)
		if len(p.Epochs) > 0 {
			var epochs epochRows
			for _, e := range p.Epochs {
				epochs.add(e.Conv, e.From, e.Devices)
			}
			b.Queue(insertEpochs, epochs.epochArgs()...)
			b.Queue(insertRecipients, epochs.recipientArgs()...)
		}
		var msgs messageRows
		var rows ciphertextRows
		for _, nm := range p.Messages {
			in := batch[nm.Job].In
			msgs.add(in.M, nm.Seq, in.SentAt)
			rows.add(in.M.ConversationID, nm.Seq, nm.Rows)
		}
		b.Queue(insertMessages, msgs.args()...)
		if rows.len() > 0 {
			b.Queue(insertCiphertexts, rows.args()...)
		}
		for _, nm := range p.Messages { // in seq order: two changes of one member apply in order
			in := batch[nm.Job].In
			if c := in.M.Change; c != nil {
				if err := queueMemberChange(b, in.M.ConversationID, nm.Seq, in.SentAt, c); err != nil {
					return err
				}
			}
		}
	}
	b.Queue("COMMIT")
	return conn.SendBatch(ctx, b).Close()
}

// messageRows are the columns of messages rows to insert.
type messageRows struct {
	convs, senderUsers, senderDevices []string
	seqs                              []int64
	clientIDs                         []*string
	sentAts                           []time.Time
	shared, events                    [][]byte
}

func (r *messageRows) add(m *switchboard.Message, seq int64, sentAt time.Time) {
	r.convs = append(r.convs, m.ConversationID)
	r.seqs = append(r.seqs, seq)
	r.senderUsers = append(r.senderUsers, m.SenderUserID)
	r.senderDevices = append(r.senderDevices, m.SenderDeviceID)
	r.clientIDs = append(r.clientIDs, nullString(m.ClientID))
	r.sentAts = append(r.sentAts, sentAt)
	r.shared = append(r.shared, m.Shared)
	r.events = append(r.events, m.Event)
}

func (r *messageRows) len() int { return len(r.convs) }

func (r *messageRows) args() []any {
	return []any{r.convs, r.seqs, r.senderUsers, r.senderDevices, r.clientIDs, r.sentAts, r.shared, r.events}
}

// queueMemberChange queues the statements of an event's change of the
// members at its seq. Rare (an admin's action): plain statements.
func queueMemberChange(b *pgx.Batch, convID string, seq int64, at time.Time, c *switchboard.MemberChange) error {
	switch c.Op {
	case switchboard.MemberAdd:
		b.Queue(`DELETE FROM former_members WHERE conversation_id = $1 AND user_id = $2`, convID, c.UserID)
		b.Queue(`INSERT INTO members (conversation_id, user_id, joined_at, joined_seq) VALUES ($1, $2, $3, $4)
			ON CONFLICT DO NOTHING`, convID, c.UserID, at, seq)
	case switchboard.MemberRemove:
		b.Queue(`DELETE FROM members WHERE conversation_id = $1 AND user_id = $2`, convID, c.UserID)
		b.Queue(`INSERT INTO former_members (user_id, conversation_id, left_seq) VALUES ($1, $2, $3)
			ON CONFLICT (user_id, conversation_id) DO UPDATE SET left_seq = excluded.left_seq`, c.UserID, convID, seq)
	case switchboard.MemberSetAdmin:
		b.Queue(`UPDATE members SET admin = $3 WHERE conversation_id = $1 AND user_id = $2`, convID, c.UserID, c.Admin)
	default:
		return fmt.Errorf("unknown member operation %d", c.Op)
	}
	return nil
}
