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
	"github.com/switchboard-chat/switchboard/internal/sqlcore"
)

// Group commit. Concurrent AppendMessage calls queue (sqlcore, on
// groupcommit), and the committer stores a batch of them in one BEGIN
// IMMEDIATE ... COMMIT on the writer connection: one WAL fsync for the
// batch instead of one per message. Inside it the batch takes the three
// steps of the PostgreSQL store (internal/sqlcore/decide.go): read the
// heads of its conversations and its client ids already stored, decide
// each message's fate (sqlcore.Decide), write the plan. Writes are
// serialized (one writer connection, and BEGIN IMMEDIATE against other
// processes), so what the read step saw cannot change before the write.
// The devices are checked by the foreign keys.
//
// Any error but a message's own (an unknown conversation) rolls the batch
// back (a foreign key, the disk), and its messages are appended one by
// one, each in its own transaction, so that only the culprit fails.

// AppendStats counts the batches AppendMessage has committed so far and
// the calls in them.
func (s *Store) AppendStats() groupcommit.Stats { return s.appends.Stats() }

// OnAppended sets the commit observer (switchboard.Store).
func (s *Store) OnAppended(fn func(m *switchboard.Message)) { s.observer.OnAppended(fn) }

// commitAppends is the committer: it sets every job's result, then tells
// the observer what was stored.
func (s *Store) commitAppends(batch []*sqlcore.AppendJob) {
	defer s.observer.Notify(batch)
	// No caller's context: one caller giving up must not fail the others.
	ctx := context.Background()
	groupcommit.Split(batch, func(jobs []*sqlcore.AppendJob) error { return s.appendBatch(ctx, jobs) })
}

// appendBatch stores the batch in one transaction and, once it is
// committed, sets every job's result. On error it sets none.
func (s *Store) appendBatch(ctx context.Context, batch []*sqlcore.AppendJob) error {
	// Outside the transaction, which holds the only writer connection.
	if err := s.stmts.prepare(ctx, s.w, batch); err != nil {
		return err
	}
	var p sqlcore.Plan
	err := s.write(ctx, func(tx *sql.Tx) error {
		a := s.stmts.in(ctx, tx)
		defer a.close()
		snap, err := a.read(ctx, batch)
		if err != nil {
			return err
		}
		p = sqlcore.Decide(batch, snap)
		return a.write(ctx, batch, p)
	})
	if err != nil {
		return err
	}
	for i, j := range batch {
		j.Out, j.Err = p.Results[i].Out, p.Results[i].Err
	}
	return nil
}

// ciphertextChunk is the most rows one INSERT of per-device ciphertexts
// takes. A message to a big group takes several; there are at most this
// many distinct statements to prepare.
const ciphertextChunk = 128

const (
	// One row whatever exists: a NULL head for an unknown conversation
	// (?1), a NULL message when its sender device (?2) did not store the
	// client id (?3).
	headAndLookupQuery = `SELECT c.head_seq, c.shared_set_hash, c.shared_from_seq,
			m.conversation_id, m.seq, m.sender_user_id, m.sent_at, m.shared_ciphertext
		FROM (SELECT 1) LEFT JOIN conversations c ON c.id = ?1
		LEFT JOIN messages m ON m.sender_device_id = ?2 AND m.client_id = ?3`
	lookupQuery = `SELECT conversation_id, seq, sender_user_id, sent_at, shared_ciphertext
		FROM messages WHERE sender_device_id = ? AND client_id = ?`
	setHeadQuery = `UPDATE conversations SET head_seq = ?, shared_set_hash = ?, shared_from_seq = ? WHERE id = ?`
	storeQuery   = `INSERT INTO messages
		(conversation_id, seq, sender_user_id, sender_device_id, client_id, sent_at, shared_ciphertext, event)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
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
	headAndLookup, lookup, setHead, store, epoch, recipients *sql.Stmt
	ciphertexts                                              map[int]*sql.Stmt // by rows
}

// fixed lists the statements that do not depend on a batch, with their queries.
func (st *appendStmts) fixed() []struct {
	stmt  **sql.Stmt
	query string
} {
	return []struct {
		stmt  **sql.Stmt
		query string
	}{{&st.headAndLookup, headAndLookupQuery}, {&st.lookup, lookupQuery}, {&st.setHead, setHeadQuery},
		{&st.store, storeQuery}, {&st.epoch, epochQuery}, {&st.recipients, recipientsQuery}}
}

// prepare prepares what the batch needs and is not yet prepared.
func (st *appendStmts) prepare(ctx context.Context, db *sql.DB, batch []*sqlcore.AppendJob) error {
	for _, p := range st.fixed() {
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
		n := len(j.In.M.Ciphertexts)
		if j.In.Set != nil {
			n = 1 // at most the sender's row (sqlcore/epochs.go)
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
	for _, p := range st.fixed() {
		if *p.stmt != nil {
			(*p.stmt).Close()
		}
	}
	for _, stmt := range st.ciphertexts {
		stmt.Close()
	}
}

// in returns an appender in tx. The statements are prepared (prepare).
func (st *appendStmts) in(ctx context.Context, tx *sql.Tx) *appender {
	a := &appender{tx: tx, stmts: st, ciphertexts: make(map[int]*sql.Stmt)}
	a.headAndLookup, a.lookup, a.setHead = a.use(ctx, st.headAndLookup), a.use(ctx, st.lookup), a.use(ctx, st.setHead)
	a.store = a.use(ctx, st.store)
	return a // epoch and recipients once a batch starts an epoch (startEpoch), which most do not
}

// appender reads and writes a batch in one transaction, through its
// handles on the prepared statements.
type appender struct {
	tx                                                       *sql.Tx
	stmts                                                    *appendStmts
	headAndLookup, lookup, setHead, store, epoch, recipients *sql.Stmt
	ciphertexts                                              map[int]*sql.Stmt
	used                                                     []*sql.Stmt
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

// read is the read step: the heads of the batch's conversations that
// exist, and its client ids already stored. A message whose conversation
// is not read yet reads both with one statement (readQuery), so that a
// batch of one, a sequential sender's, runs no more statements than an
// append that bumps the head in place; the others look up their client id
// alone.
func (a *appender) read(ctx context.Context, batch []*sqlcore.AppendJob) (sqlcore.Snapshot, error) {
	snap := sqlcore.Snapshot{Heads: make(map[string]sqlcore.Head)}
	for _, j := range batch {
		m := j.In.M
		k := sqlcore.ClientKey{Device: m.SenderDeviceID, Client: m.ClientID}
		var d *switchboard.Message
		var err error
		if _, ok := snap.Heads[m.ConversationID]; ok {
			if m.ClientID == "" {
				continue
			}
			d, err = a.duplicate(ctx, k)
		} else {
			d, err = a.readOne(ctx, m, &snap)
		}
		if err != nil {
			return snap, err
		}
		if d != nil {
			if snap.Stored == nil { // most batches hold no retry
				snap.Stored = make(map[sqlcore.ClientKey]*switchboard.Message)
			}
			snap.Stored[k] = d
		}
	}
	return snap, nil
}

// readOne reads the head of m's conversation into snap, if it exists, and
// returns the message stored under m's client id, or nil.
func (a *appender) readOne(ctx context.Context, m *switchboard.Message, snap *sqlcore.Snapshot) (*switchboard.Message, error) {
	var (
		head, from, seq, sentAt sql.NullInt64
		hash, shared            []byte
		conv, user              sql.NullString
	)
	err := a.headAndLookup.QueryRowContext(ctx, m.ConversationID, m.SenderDeviceID, nullString(m.ClientID)).
		Scan(&head, &hash, &from, &conv, &seq, &user, &sentAt, &shared)
	if err != nil {
		return nil, fmt.Errorf("head of %s: %w", m.ConversationID, err)
	}
	if head.Valid {
		snap.Heads[m.ConversationID] = sqlcore.Head{Seq: head.Int64, SetHash: hash, From: from.Int64}
	}
	if !conv.Valid {
		return nil, nil
	}
	return &switchboard.Message{ConversationID: conv.String, Seq: seq.Int64, SenderUserID: user.String,
		SenderDeviceID: m.SenderDeviceID, ClientID: m.ClientID, SentAt: fromMicros(sentAt.Int64), Shared: shared}, nil
}

// duplicate returns the message k.Device already stored under k.Client,
// or nil.
func (a *appender) duplicate(ctx context.Context, k sqlcore.ClientKey) (*switchboard.Message, error) {
	d := switchboard.Message{SenderDeviceID: k.Device, ClientID: k.Client}
	var sentAt int64
	err := a.lookup.QueryRowContext(ctx, k.Device, k.Client).
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

// write is the write step: the plan's heads, epochs, messages and rows.
func (a *appender) write(ctx context.Context, batch []*sqlcore.AppendJob, p sqlcore.Plan) error {
	for _, h := range p.Heads {
		// A nil hash must be NULL, not an empty blob.
		var hash any
		if h.SetHash != nil {
			hash = h.SetHash
		}
		if _, err := a.setHead.ExecContext(ctx, h.Seq, hash, h.From, h.ID); err != nil {
			return fmt.Errorf("head of %s: %w", h.ID, err)
		}
	}
	for _, e := range p.Epochs {
		if err := a.startEpoch(ctx, e); err != nil {
			return fmt.Errorf("recipient epoch: %w", err)
		}
	}
	for _, nm := range p.Messages {
		in := batch[nm.Job].In
		m := in.M
		_, err := a.store.ExecContext(ctx, m.ConversationID, nm.Seq, m.SenderUserID, m.SenderDeviceID,
			nullString(m.ClientID), micros(in.SentAt), m.Shared, m.Event)
		if err != nil {
			return err
		}
		if m.Change != nil {
			if err := a.changeMember(ctx, m.ConversationID, nm.Seq, in.SentAt, m.Change); err != nil {
				return fmt.Errorf("member change: %w", err)
			}
		}
		if err := a.insertCiphertexts(ctx, m.ConversationID, nm.Seq, nm.Rows); err != nil {
			return fmt.Errorf("ciphertexts: %w", err)
		}
	}
	return nil
}

// startEpoch writes an epoch and its devices' rows, with one statement
// for the devices.
func (a *appender) startEpoch(ctx context.Context, e sqlcore.Epoch) error {
	if a.epoch == nil {
		a.epoch, a.recipients = a.use(ctx, a.stmts.epoch), a.use(ctx, a.stmts.recipients)
	}
	if _, err := a.epoch.ExecContext(ctx, e.Conv, e.From); err != nil {
		return err
	}
	ids, err := json.Marshal(e.Devices)
	if err != nil {
		return err
	}
	_, err = a.recipients.ExecContext(ctx, e.Conv, e.From, string(ids))
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

// changeMember applies an event's change of the members at its seq. Rare
// (an admin's action), so plain statements, not prepared ones.
func (a *appender) changeMember(ctx context.Context, convID string, seq int64, at time.Time, c *switchboard.MemberChange) error {
	var stmts []string
	args := []any{convID, c.UserID, seq, micros(at), c.Admin}
	switch c.Op {
	case switchboard.MemberAdd:
		stmts = []string{
			`DELETE FROM former_members WHERE conversation_id = ?1 AND user_id = ?2`,
			`INSERT INTO members (conversation_id, user_id, joined_at, joined_seq) VALUES (?1, ?2, ?4, ?3)
				ON CONFLICT DO NOTHING`,
		}
	case switchboard.MemberRemove:
		stmts = []string{
			`DELETE FROM members WHERE conversation_id = ?1 AND user_id = ?2`,
			`INSERT INTO former_members (user_id, conversation_id, left_seq) VALUES (?2, ?1, ?3)
				ON CONFLICT DO UPDATE SET left_seq = excluded.left_seq`,
		}
	case switchboard.MemberSetAdmin:
		stmts = []string{`UPDATE members SET admin = ?5 WHERE conversation_id = ?1 AND user_id = ?2`}
	default:
		return fmt.Errorf("unknown member operation %d", c.Op)
	}
	for _, q := range stmts {
		if _, err := a.tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	return nil
}
