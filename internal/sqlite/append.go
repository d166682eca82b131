package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/groupcommit"
)

// Group commit. Concurrent AppendMessage calls queue (groupcommit), and the
// committer stores a batch of them in one BEGIN IMMEDIATE ... COMMIT on the
// writer connection: one WAL fsync for the batch instead of one per message.
// Inside it the messages are appended one after the other exactly as alone
// (look for the client id, bump the head seq, insert), so a duplicate of a
// message earlier in the same batch is found like any other, and an unknown
// conversation fails that message alone, having written nothing. The bump
// also decides whether a shared message starts a recipient epoch
// (epochs.go), so the batch's shared messages to one conversation with one
// set share an epoch, and a change of set mid-batch starts another.
//
// Any other error (a foreign key, the disk) rolls the batch back, and its
// messages are appended one by one, each in its own transaction, so that
// only the culprit fails.

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

// Batch limits: messages, and rows (a message and its ciphertexts), so that
// one batch of messages to big groups does not hold the writer for long.
const (
	maxBatch     = 256
	maxBatchRows = 8192
)

func newAppendQueue(s *Store) *groupcommit.Queue[appendIn, appendOut] {
	return groupcommit.New(groupcommit.Config[appendIn]{
		MaxBatch:  maxBatch,
		MaxWeight: maxBatchRows,
		Weight:    weight,
	}, s.commitAppends)
}

// AppendStats counts the batches AppendMessage has committed so far and
// the calls in them.
func (s *Store) AppendStats() groupcommit.Stats { return s.appends.Stats() }

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
	ctx := context.Background()
	groupcommit.Split(batch, func(jobs []*appendJob) error { return s.appendBatch(ctx, jobs) })
}

// appendBatch stores the batch in one transaction and, once it is
// committed, sets every job's result. On error it sets none.
func (s *Store) appendBatch(ctx context.Context, batch []*appendJob) error {
	// Outside the transaction, which holds the only writer connection.
	if err := s.stmts.prepare(ctx, s.w, batch); err != nil {
		return err
	}
	outs := make([]appendOut, len(batch))
	errs := make([]error, len(batch))
	err := s.write(ctx, func(tx *sql.Tx) error {
		a := s.stmts.in(ctx, tx)
		defer a.close()
		for i, j := range batch {
			out, err := a.append(ctx, j.In)
			if errors.Is(err, switchboard.ErrNotFound) {
				errs[i] = err
				continue
			}
			if err != nil {
				return err
			}
			outs[i] = out
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, j := range batch {
		j.Out, j.Err = outs[i], errs[i]
	}
	return nil
}

// ciphertextChunk is the most rows one INSERT of per-device ciphertexts
// takes. A message to a big group takes several; there are at most this
// many distinct statements to prepare.
const ciphertextChunk = 128

const (
	lookupQuery = `SELECT conversation_id, seq, sender_user_id, sent_at, shared_ciphertext
		FROM messages WHERE sender_device_id = ? AND client_id = ?`
	// For a shared message (?2, the hash of its set) whose set is not the
	// current one, the bump also starts an epoch at its seq; it returns
	// the seq and whether the epoch is new. (SET reads the row as it was;
	// RETURNING, as it is.)
	bumpQuery = `UPDATE conversations SET head_seq = head_seq + 1,
		shared_from_seq = CASE WHEN ?2 IS NOT NULL AND shared_set_hash IS NOT ?2
			THEN head_seq + 1 ELSE shared_from_seq END,
		shared_set_hash = coalesce(?2, shared_set_hash)
		WHERE id = ?1 RETURNING head_seq, shared_from_seq = head_seq`
	storeQuery = `INSERT INTO messages
		(conversation_id, seq, sender_user_id, sender_device_id, client_id, sent_at, shared_ciphertext)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	epochQuery = `INSERT INTO shared_epochs (conversation_id, from_seq) VALUES (?, ?)`
	// An epoch's rows differ only by device: one statement whatever the
	// group's size, the ids as one JSON array.
	recipientsQuery = `INSERT INTO shared_recipients (conversation_id, from_seq, device_id)
		SELECT ?, ?, value FROM json_each(?)`
)

// insertCiphertextsQuery inserts n rows.
func insertCiphertextsQuery(n int) string {
	return `INSERT INTO message_ciphertexts (conversation_id, seq, device_id, ciphertext) VALUES ` +
		strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?), ", n), ", ")
}

// appendStmts are the statements of appends, prepared once on the writer
// connection: compiling them each time was a good part of the cost of a
// small batch. Only the committer uses them, so they need no lock.
type appendStmts struct {
	lookup, bump, store, epoch, recipients *sql.Stmt
	ciphertexts                            map[int]*sql.Stmt // by rows
}

// prepare prepares what the batch needs and is not yet prepared.
func (st *appendStmts) prepare(ctx context.Context, db *sql.DB, batch []*appendJob) error {
	for _, p := range []struct {
		stmt  **sql.Stmt
		query string
	}{{&st.lookup, lookupQuery}, {&st.bump, bumpQuery}, {&st.store, storeQuery},
		{&st.epoch, epochQuery}, {&st.recipients, recipientsQuery}} {
		if *p.stmt == nil {
			stmt, err := db.PrepareContext(ctx, p.query)
			if err != nil {
				return err
			}
			*p.stmt = stmt
		}
	}
	if st.ciphertexts == nil {
		st.ciphertexts = make(map[int]*sql.Stmt)
	}
	for _, j := range batch {
		n := len(j.In.m.Ciphertexts)
		if j.In.set != nil {
			n = len(selfRow(j.In.m)) // the sender's row, if any (epochs.go)
		}
		for _, rows := range []int{min(n, ciphertextChunk), n % ciphertextChunk} {
			if rows == 0 || st.ciphertexts[rows] != nil {
				continue
			}
			stmt, err := db.PrepareContext(ctx, insertCiphertextsQuery(rows))
			if err != nil {
				return err
			}
			st.ciphertexts[rows] = stmt
		}
	}
	return nil
}

func (st *appendStmts) close() {
	for _, stmt := range []*sql.Stmt{st.lookup, st.bump, st.store, st.epoch, st.recipients} {
		if stmt != nil {
			stmt.Close()
		}
	}
	for _, stmt := range st.ciphertexts {
		stmt.Close()
	}
}

// in returns an appender in tx. The statements are prepared (prepare).
func (st *appendStmts) in(ctx context.Context, tx *sql.Tx) *appender {
	a := &appender{tx: tx, stmts: st, ciphertexts: make(map[int]*sql.Stmt)}
	a.lookup, a.bump, a.store = a.use(ctx, st.lookup), a.use(ctx, st.bump), a.use(ctx, st.store)
	a.epoch, a.recipients = a.use(ctx, st.epoch), a.use(ctx, st.recipients)
	return a
}

// appender appends messages in one transaction, through its handles on
// the prepared statements.
type appender struct {
	tx                                     *sql.Tx
	stmts                                  *appendStmts
	lookup, bump, store, epoch, recipients *sql.Stmt
	ciphertexts                            map[int]*sql.Stmt
	used                                   []*sql.Stmt
}

// use returns the transaction's handle on stmt, which reuses what stmt
// prepared on the connection.
func (a *appender) use(ctx context.Context, stmt *sql.Stmt) *sql.Stmt {
	s := a.tx.StmtContext(ctx, stmt)
	a.used = append(a.used, s)
	return s
}

func (a *appender) close() {
	for _, s := range a.used {
		s.Close()
	}
}

// append appends one message; ErrNotFound (its conversation is unknown)
// means it wrote nothing.
func (a *appender) append(ctx context.Context, in appendIn) (appendOut, error) {
	m := in.m
	// Writes are serialized, so looking first cannot race with another
	// append, and it sees the messages of this batch stored before.
	if dup, err := a.duplicate(ctx, m); err != nil || dup != nil {
		return appendOut{dup: dup}, err
	}
	var seq int64
	var newEpoch bool
	// A nil hash must be NULL, not an empty blob.
	var hash any
	if in.setHash != nil {
		hash = in.setHash
	}
	if err := a.bump.QueryRowContext(ctx, m.ConversationID, hash).Scan(&seq, &newEpoch); err != nil {
		return appendOut{}, notFound(err)
	}
	_, err := a.store.ExecContext(ctx, m.ConversationID, seq, m.SenderUserID, m.SenderDeviceID,
		nullString(m.ClientID), micros(in.sentAt), m.Shared)
	if err != nil {
		return appendOut{}, err
	}
	if newEpoch {
		if err := a.startEpoch(ctx, m.ConversationID, seq, in.set); err != nil {
			return appendOut{}, fmt.Errorf("recipient epoch: %w", err)
		}
	}
	cts := m.Ciphertexts
	if in.set != nil {
		cts = selfRow(m)
	}
	if err := a.insertCiphertexts(ctx, m.ConversationID, seq, cts); err != nil {
		return appendOut{}, fmt.Errorf("ciphertexts: %w", err)
	}
	return appendOut{seq: seq}, nil
}

// duplicate returns the message m.SenderDeviceID already stored under
// m.ClientID, or nil.
func (a *appender) duplicate(ctx context.Context, m *switchboard.Message) (*switchboard.Message, error) {
	if m.ClientID == "" {
		return nil, nil
	}
	d := switchboard.Message{SenderDeviceID: m.SenderDeviceID, ClientID: m.ClientID}
	var sentAt int64
	err := a.lookup.QueryRowContext(ctx, m.SenderDeviceID, m.ClientID).
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

// selfRow returns the row of a shared message's sender when it is also one
// of its recipients, whom no epoch serves (epochs.go): a nil ciphertext,
// stored NULL, "read the shared one".
func selfRow(m *switchboard.Message) map[string][]byte {
	if _, ok := m.Ciphertexts[m.SenderDeviceID]; ok {
		return map[string][]byte{m.SenderDeviceID: nil}
	}
	return nil
}

// startEpoch writes an epoch and its devices' rows, with one statement
// for the devices.
func (a *appender) startEpoch(ctx context.Context, convID string, from int64, devices []string) error {
	if _, err := a.epoch.ExecContext(ctx, convID, from); err != nil {
		return err
	}
	ids, err := json.Marshal(devices)
	if err != nil {
		return err
	}
	_, err = a.recipients.ExecContext(ctx, convID, from, string(ids))
	return err
}

// insertCiphertexts writes a message's rows with one multi-row INSERT per
// ciphertextChunk rows, not one statement per recipient device.
func (a *appender) insertCiphertexts(ctx context.Context, convID string, seq int64, cts map[string][]byte) error {
	args := make([]any, 0, 4*min(len(cts), ciphertextChunk))
	flush := func() error {
		rows := len(args) / 4
		if rows == 0 {
			return nil
		}
		stmt := a.ciphertexts[rows]
		if stmt == nil {
			stmt = a.use(ctx, a.stmts.ciphertexts[rows])
			a.ciphertexts[rows] = stmt
		}
		_, err := stmt.ExecContext(ctx, args...)
		args = args[:0]
		return err
	}
	for d, ct := range cts {
		args = append(args, convID, seq, d, ct) // a nil ct is NULL: "use the shared one"
		if len(args) == 4*ciphertextChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
