package postgres

import (
	"bytes"
	"context"
	"errors"
	"hash/maphash"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/groupcommit"
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
// Between the two, Go decides each message's fate: a duplicate of a stored
// message, a duplicate of an earlier message of the same batch, an unknown
// conversation (that caller alone gets ErrNotFound), a device that does
// not exist or a sender device not the sender's (errUnknownDevice: since
// migration 0004 no foreign key checks them), or new, with the next
// seq of its conversation in batch order; and for a new shared message,
// whether its recipient set starts an epoch (epochs.go): the batch's
// shared messages to one conversation with one set share an epoch, and a
// change of set mid-batch starts another. Locking in id order keeps two
// nodes' batches from deadlocking on each other's conversations (two lanes
// never share one). Two batches that insert the same client ids in
// opposite orders can still deadlock on the unique index: the server
// aborts one (40P01), which is then retried message by message.
//
// If the server refuses the batch for what one message holds (a unique
// violation when another node stored the same client id after step 1, a
// value a column refuses, a deadlock), the batch is rolled back and its
// messages are appended one by one, so that only the culprit fails. An error that is no
// message's fault (a lost connection) fails every caller of the batch: the
// commit's outcome may be unknown, and only the caller can retry safely,
// with the same client id.

// appendIn is one AppendMessage call in the queue.
type appendIn struct {
	m      *switchboard.Message
	sentAt time.Time // m.SentAt, or now, in UTC
	// A shared message's epoch set and its hash (recipientSet), worked
	// out before it queues; nil for a message with per-device ciphertexts.
	set     []string
	setHash []byte
}

// appendOut is its result: the new message's seq, or the message already
// stored under its client id.
type appendOut struct {
	seq int64
	dup *switchboard.Message
}

type appendJob = groupcommit.Job[appendIn, appendOut]

// Batch limits: messages, and rows (a message and its ciphertexts) so that
// a batch of messages to big groups stays a few MB of parameters.
const (
	maxBatch     = 256
	maxBatchRows = 8192
)

// batchTimeout bounds the commit of one batch, fallback included.
const batchTimeout = 30 * time.Second

// lanes is how many queues split a node's appends by conversation, each
// with its own committer and connection, so that that many batches commit
// at once without contending for a conversation's lock: one server backend
// runs a batch on one core. More lanes use more of the server's cores but
// make smaller batches (more commits) of the same load.
const lanes = 2

func newAppendQueue(s *Store) *groupcommit.Queue[appendIn, appendOut] {
	return groupcommit.New(groupcommit.Config[appendIn]{
		MaxBatch:  maxBatch,
		MaxWeight: maxBatchRows,
		Weight:    weight,
	}, s.commitAppends)
}

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
func (s *Store) lane(convID string) *groupcommit.Queue[appendIn, appendOut] {
	return s.appends[maphash.String(s.seed, convID)%uint64(len(s.appends))]
}

// OnAppended implements switchboard.AppendObserver.
func (s *Store) OnAppended(fn func(m *switchboard.Message)) { s.onAppended = fn }

// notifyAppended hands the batch's new messages to the observer, in batch
// order, which is seq order per conversation: the batch (or, after a
// failure, each of its messages alone) was appended in that order.
func (s *Store) notifyAppended(batch []*appendJob) {
	if s.onAppended == nil {
		return
	}
	for _, j := range batch {
		if j.Err != nil || j.Out.dup != nil {
			continue
		}
		m := *j.In.m
		m.Seq, m.SentAt = j.Out.seq, j.In.sentAt
		s.onAppended(&m)
	}
}

// commitAppends is the committer: it sets every job's result, then tells
// the observer what was stored.
func (s *Store) commitAppends(batch []*appendJob) {
	defer s.notifyAppended(batch)
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
			j.Out, j.Err = s.appendAlone(ctx, j.In)
		}
	default:
		for _, j := range batch {
			j.Err = err
		}
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
		(conversation_id, seq, sender_user_id, sender_device_id, client_id, sent_at, shared_ciphertext)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[],
			$6::timestamptz[], $7::bytea[])`
)

// clientKey identifies a message for idempotency.
type clientKey struct{ device, client string }

// convHead is a conversation's state as a batch moves it: its head seq and
// current epoch (the hash of its set, nil before the first, and from_seq).
type convHead struct {
	seq     int64
	setHash []byte
	from    int64
}

// appendBatch stores the batch in one transaction and, once it is
// committed, sets every job's result. On error it sets none.
func (s *Store) appendBatch(ctx context.Context, batch []*appendJob) (err error) {
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

	// Round trip 1.
	var convs, devices, senders, clientIDs []string
	seen, named := make(map[string]bool), make(map[string]bool)
	for _, j := range batch {
		m := j.In.m
		if !seen[m.ConversationID] {
			seen[m.ConversationID] = true
			convs = append(convs, m.ConversationID)
		}
		for _, d := range messageDevices(m, nil) {
			if !named[d] {
				named[d] = true
				devices = append(devices, d)
			}
		}
		if m.ClientID != "" {
			senders, clientIDs = append(senders, m.SenderDeviceID), append(clientIDs, m.ClientID)
		}
	}
	heads := make(map[string]*convHead, len(convs))
	stored := make(map[clientKey]*switchboard.Message)
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(lockConversations, convs).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id string
			var h convHead
			if err := rows.Scan(&id, &h.seq, &h.setHash, &h.from); err != nil {
				return err
			}
			heads[id] = &h
		}
		return rows.Err()
	})
	if len(senders) > 0 {
		b.Queue(storedClientIDs, senders, clientIDs).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var d switchboard.Message
				err := rows.Scan(&d.SenderDeviceID, &d.ClientID, &d.ConversationID, &d.Seq,
					&d.SenderUserID, &d.SentAt, &d.Shared)
				if err != nil {
					return err
				}
				d.SentAt = d.SentAt.UTC()
				stored[clientKey{d.SenderDeviceID, d.ClientID}] = &d
			}
			return rows.Err()
		})
	}
	var owners map[string]string
	b.Queue(deviceOwners, devices).Query(func(rows pgx.Rows) (err error) {
		owners, err = scanOwners(rows, len(devices))
		return err
	})
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return err
	}

	// Each message's fate.
	outs := make([]appendOut, len(batch))
	errs := make([]error, len(batch))
	first := make(map[clientKey]int) // index of the batch's first message with that client id
	var later []int                  // the others
	var msgs messageRows
	var rows ciphertextRows
	var epochs epochRows
	bumped := make(map[string]bool)
	for i, j := range batch {
		m := j.In.m
		k := clientKey{m.SenderDeviceID, m.ClientID}
		if m.ClientID != "" {
			if d := stored[k]; d != nil {
				outs[i].dup = d
				continue
			}
			if _, ok := first[k]; ok {
				later = append(later, i)
				continue
			}
			first[k] = i
		}
		h, ok := heads[m.ConversationID]
		if !ok {
			errs[i] = switchboard.ErrNotFound
			continue
		}
		if errs[i] = checkDevices(m, owners); errs[i] != nil {
			continue
		}
		h.seq++
		bumped[m.ConversationID] = true
		outs[i].seq = h.seq
		msgs.add(m, h.seq, j.In.sentAt)
		if j.In.set == nil {
			rows.add(m.ConversationID, h.seq, m.Ciphertexts)
			continue
		}
		if !bytes.Equal(h.setHash, j.In.setHash) {
			h.setHash, h.from = j.In.setHash, h.seq
			epochs.add(m.ConversationID, h.seq, j.In.set)
		}
		rows.addSelf(m, h.seq)
	}
	for _, i := range later {
		m := batch[i].In.m
		f := first[clientKey{m.SenderDeviceID, m.ClientID}]
		if errs[i] = errs[f]; errs[i] == nil {
			outs[i].dup = storedAs(batch[f].In, outs[f])
		}
	}

	// Round trip 2.
	b = &pgx.Batch{}
	if msgs.len() > 0 {
		var ids []string
		var newHeads, froms []int64
		var hashes [][]byte
		for id := range bumped {
			h := heads[id]
			ids, newHeads = append(ids, id), append(newHeads, h.seq)
			hashes, froms = append(hashes, h.setHash), append(froms, h.from)
		}
		b.Queue(setHeads, ids, newHeads, hashes, froms)
		if epochs.len() > 0 {
			b.Queue(insertEpochs, epochs.epochArgs()...)
			b.Queue(insertRecipients, epochs.recipientArgs()...)
		}
		b.Queue(insertMessages, msgs.args()...)
		if rows.len() > 0 {
			b.Queue(insertCiphertexts, rows.args()...)
		}
	}
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	for i, j := range batch {
		j.Out, j.Err = outs[i], errs[i]
	}
	return nil
}

// storedAs is the message of in as a later duplicate sees it: what
// AppendMessage returns for a stored one, without its ciphertexts.
func storedAs(in appendIn, out appendOut) *switchboard.Message {
	if out.dup != nil {
		return out.dup
	}
	m := in.m
	return &switchboard.Message{ConversationID: m.ConversationID, Seq: out.seq, SenderUserID: m.SenderUserID,
		SenderDeviceID: m.SenderDeviceID, ClientID: m.ClientID, SentAt: in.sentAt, Shared: m.Shared}
}

// messageRows are the columns of messages rows to insert.
type messageRows struct {
	convs, senderUsers, senderDevices []string
	seqs                              []int64
	clientIDs                         []*string
	sentAts                           []time.Time
	shared                            [][]byte
}

func (r *messageRows) add(m *switchboard.Message, seq int64, sentAt time.Time) {
	r.convs = append(r.convs, m.ConversationID)
	r.seqs = append(r.seqs, seq)
	r.senderUsers = append(r.senderUsers, m.SenderUserID)
	r.senderDevices = append(r.senderDevices, m.SenderDeviceID)
	r.clientIDs = append(r.clientIDs, nullString(m.ClientID))
	r.sentAts = append(r.sentAts, sentAt)
	r.shared = append(r.shared, m.Shared)
}

func (r *messageRows) len() int { return len(r.convs) }

func (r *messageRows) args() []any {
	return []any{r.convs, r.seqs, r.senderUsers, r.senderDevices, r.clientIDs, r.sentAts, r.shared}
}
