package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/switchboard-chat/switchboard"
)

// errRaced aborts an append whose client id another append stored first,
// undoing the head seq bump.
var errRaced = errors.New("client id stored by a concurrent append")

// AppendMessage assigns m.Seq and, when zero, m.SentAt, stores m and moves
// the conversation's head seq, all in one transaction, which it may share
// with concurrent calls (see append.go). A message with per-device
// ciphertexts has a row per recipient device; a shared one has none, only
// a new recipient epoch when its set is not the conversation's current one
// (epochs.go).
// A client id the sender device already used returns the stored message
// (without its ciphertexts) and duplicate=true. An empty ClientID is never
// deduplicated.
func (s *Store) AppendMessage(ctx context.Context, m *switchboard.Message) (*switchboard.Message, bool, error) {
	in := newAppendIn(m)
	out, err := s.lane(m.ConversationID).Do(ctx, in)
	return appended(m, in, out, err)
}

// AppendMessageAsync implements switchboard.AsyncAppender: AppendMessage
// without the wait.
func (s *Store) AppendMessageAsync(m *switchboard.Message, done func(*switchboard.Message, bool, error)) {
	in := newAppendIn(m)
	s.lane(m.ConversationID).Go(in, func(out appendOut, err error) { done(appended(m, in, out, err)) })
}

func newAppendIn(m *switchboard.Message) appendIn {
	in := appendIn{m: m, sentAt: m.SentAt.UTC().Truncate(time.Microsecond)}
	if m.SentAt.IsZero() {
		in.sentAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	if m.Shared != nil {
		// Here, not in the committer, which holds the conversations' locks.
		in.set, in.setHash = recipientSet(m)
	}
	return in
}

// appended is AppendMessage's result for in, once its batch committed.
func appended(m *switchboard.Message, in appendIn, out appendOut, err error) (*switchboard.Message, bool, error) {
	switch {
	case err != nil:
		return nil, false, fmt.Errorf("postgres: append message to %s: %w", m.ConversationID, err)
	case out.dup != nil:
		return out.dup, true, nil
	}
	m.Seq, m.SentAt = out.seq, in.sentAt
	return m, false, nil
}

// appendAlone appends one message in its own transaction: the path of a
// batch that failed because of one of its messages.
func (s *Store) appendAlone(ctx context.Context, in appendIn) (appendOut, error) {
	m := in.m
	// Retries are the common duplicates: answer them without a transaction.
	if dup, err := s.duplicate(ctx, m); err != nil || dup != nil {
		return appendOut{dup: dup}, err
	}

	ids := messageDevices(m, nil)
	rows, err := s.pool.Query(ctx, deviceOwners, ids)
	if err != nil {
		return appendOut{}, err
	}
	owners, err := scanOwners(rows, len(ids))
	if err != nil {
		return appendOut{}, err
	}
	if err := checkDevices(m, owners); err != nil {
		return appendOut{}, err
	}

	var seq int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var newEpoch bool
		err := tx.QueryRow(ctx, bumpAlone, m.ConversationID, in.setHash).Scan(&seq, &newEpoch)
		if err != nil {
			return notFound(err)
		}
		// A concurrent append of the same client id passed the check above
		// too; ON CONFLICT waits for it and then yields to it.
		tag, err := tx.Exec(ctx, `INSERT INTO messages
			(conversation_id, seq, sender_user_id, sender_device_id, client_id, sent_at, shared_ciphertext)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (sender_device_id, client_id) DO NOTHING`,
			m.ConversationID, seq, m.SenderUserID, m.SenderDeviceID, nullString(m.ClientID), in.sentAt, m.Shared)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errRaced
		}
		var rows ciphertextRows
		if in.set == nil {
			rows.add(m.ConversationID, seq, m.Ciphertexts)
		} else {
			rows.addSelf(m, seq)
		}
		if newEpoch {
			var epochs epochRows
			epochs.add(m.ConversationID, seq, in.set)
			if _, err := tx.Exec(ctx, insertEpochs, epochs.epochArgs()...); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, insertRecipients, epochs.recipientArgs()...); err != nil {
				return err
			}
		}
		if rows.len() == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, insertCiphertexts, rows.args()...)
		return err
	})
	if errors.Is(err, errRaced) {
		dup, err := s.duplicate(ctx, m)
		if err == nil && dup == nil {
			err = errors.New("the message that won the race is gone")
		}
		return appendOut{dup: dup}, err
	}
	if err != nil {
		return appendOut{}, err
	}
	return appendOut{seq: seq}, nil
}

// errUnknownDevice fails an append that names a device that does not
// exist, or a sender device that is not the sender user's. The chat
// service checks a send's devices against the members' first, so only a
// device registered or a member added since trips it.
var errUnknownDevice = errors.New("unknown device")

// deviceOwners reads the user of each device of a list: what appends check
// their devices with, once per batch, since migration 0004 dropped the
// foreign keys that checked them per row.
const deviceOwners = `SELECT id, user_id FROM devices WHERE id = ANY ($1)`

// messageDevices appends to ids the devices of m to check: its sender's
// and, for per-device ciphertexts, every recipient's. A shared message's
// recipients are its epoch's, which the foreign key of shared_recipients
// checked when the epoch began (a set equal to the current epoch's is
// that epoch's devices).
func messageDevices(m *switchboard.Message, ids []string) []string {
	ids = append(ids, m.SenderDeviceID)
	if m.Shared != nil {
		return ids
	}
	for d := range m.Ciphertexts {
		ids = append(ids, d)
	}
	return ids
}

// scanOwners reads the rows of deviceOwners into a map, device to user.
func scanOwners(rows pgx.Rows, n int) (map[string]string, error) {
	owners := make(map[string]string, n)
	var id, user string
	_, err := pgx.ForEachRow(rows, []any{&id, &user}, func() error {
		owners[id] = user
		return nil
	})
	return owners, err
}

// checkDevices returns an error wrapping errUnknownDevice unless every
// device of m to check (messageDevices) is in owners and its sender device
// is its sender user's.
func checkDevices(m *switchboard.Message, owners map[string]string) error {
	if owner, ok := owners[m.SenderDeviceID]; !ok || owner != m.SenderUserID {
		return fmt.Errorf("%w: sender device %q of user %q", errUnknownDevice, m.SenderDeviceID, m.SenderUserID)
	}
	if m.Shared != nil {
		return nil
	}
	for d := range m.Ciphertexts {
		if _, ok := owners[d]; !ok {
			return fmt.Errorf("%w: recipient device %q", errUnknownDevice, d)
		}
	}
	return nil
}

// bumpAlone moves a conversation's head seq for one message and, for a
// shared message ($2, the hash of its set) whose set is not the current
// one, starts an epoch at its seq. It returns the seq and whether the
// epoch is new. (SET reads the row as it was; RETURNING, as it is.)
const bumpAlone = `UPDATE conversations SET head_seq = head_seq + 1,
	shared_from_seq = CASE WHEN $2::bytea IS NOT NULL AND shared_set_hash IS DISTINCT FROM $2::bytea
		THEN head_seq + 1 ELSE shared_from_seq END,
	shared_set_hash = COALESCE($2::bytea, shared_set_hash)
	WHERE id = $1 RETURNING head_seq, shared_from_seq = head_seq`

// insertCiphertexts writes the rows of any number of messages in one
// statement: the columns travel as arrays and unnest turns them back into
// rows. That is one round trip like CopyFrom, without the extra ones
// CopyFrom spends describing the table, and it can share a pipeline.
const insertCiphertexts = `INSERT INTO message_ciphertexts (conversation_id, seq, device_id, ciphertext)
	SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bytea[])`

// ciphertextRows are the columns of message_ciphertexts rows to insert.
type ciphertextRows struct {
	convs   []string
	seqs    []int64
	devices []string
	texts   [][]byte // a nil entry becomes NULL: "use the shared one"
}

func (r *ciphertextRows) add(convID string, seq int64, cts map[string][]byte) {
	for d, ct := range cts {
		r.convs = append(r.convs, convID)
		r.seqs = append(r.seqs, seq)
		r.devices = append(r.devices, d)
		r.texts = append(r.texts, ct)
	}
}

// addSelf adds the row of a shared message's sender when it is also one of
// its recipients, whom no epoch serves (epochs.go).
func (r *ciphertextRows) addSelf(m *switchboard.Message, seq int64) {
	if _, ok := m.Ciphertexts[m.SenderDeviceID]; ok {
		r.convs = append(r.convs, m.ConversationID)
		r.seqs = append(r.seqs, seq)
		r.devices = append(r.devices, m.SenderDeviceID)
		r.texts = append(r.texts, nil)
	}
}

func (r *ciphertextRows) len() int { return len(r.devices) }

func (r *ciphertextRows) args() []any { return []any{r.convs, r.seqs, r.devices, r.texts} }

// duplicate returns the message m.SenderDeviceID already stored under
// m.ClientID, or nil.
func (s *Store) duplicate(ctx context.Context, m *switchboard.Message) (*switchboard.Message, error) {
	if m.ClientID == "" {
		return nil, nil
	}
	d := switchboard.Message{SenderDeviceID: m.SenderDeviceID, ClientID: m.ClientID}
	err := s.pool.QueryRow(ctx, `SELECT conversation_id, seq, sender_user_id, sent_at, shared_ciphertext
		FROM messages WHERE sender_device_id = $1 AND client_id = $2`, m.SenderDeviceID, m.ClientID).
		Scan(&d.ConversationID, &d.Seq, &d.SenderUserID, &d.SentAt, &d.Shared)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look for a duplicate: %w", err)
	}
	d.SentAt = d.SentAt.UTC()
	return &d, nil
}

// nullString stores "" as NULL, which the UNIQUE (sender_device_id, client_id)
// constraint lets repeat.
func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// messagesQuery is the union of what the device has rows for (per-device
// ciphertexts) and the shared messages of the epochs it is in, each side
// at most $4 rows in seq order, so the merge reads at most 2*$4 rows.
//
// The shared side starts from the device's range of shared_recipients in
// the conversation, from the epoch that holds seq $3+1 on: each row is an
// epoch, whose end is the next epoch's from_seq (one probe of the epochs'
// key), and the epoch's messages are one range of the messages' key. So
// the epochs the device is not in, and the messages of theirs, are never
// read. LATERAL with ORDER BY and LIMIT keeps it a loop over the epochs,
// each read in key order until enough rows.
const messagesQuery = `WITH e AS (
		SELECT r.from_seq, COALESCE((SELECT n.from_seq FROM shared_epochs n
				WHERE n.conversation_id = $2 AND n.from_seq > r.from_seq ORDER BY n.from_seq LIMIT 1),
			9223372036854775807) AS to_seq
		FROM shared_recipients r
		WHERE r.device_id = $1 AND r.conversation_id = $2
			AND r.from_seq >= COALESCE((SELECT max(n.from_seq) FROM shared_epochs n
				WHERE n.conversation_id = $2 AND n.from_seq <= $3 + 1), 0)
	)
	(SELECT m.seq, m.sender_user_id, m.sender_device_id, m.sent_at, COALESCE(c.ciphertext, m.shared_ciphertext)
		FROM message_ciphertexts c
		JOIN messages m ON m.conversation_id = c.conversation_id AND m.seq = c.seq
		WHERE c.device_id = $1 AND c.conversation_id = $2 AND c.seq > $3
		ORDER BY c.seq LIMIT $4)
	UNION ALL
	(SELECT m.seq, m.sender_user_id, m.sender_device_id, m.sent_at, m.shared_ciphertext
		FROM e CROSS JOIN LATERAL (
			SELECT * FROM messages m
			WHERE m.conversation_id = $2 AND m.seq > $3 AND m.seq >= e.from_seq AND m.seq < e.to_seq
				AND m.shared_ciphertext IS NOT NULL AND m.sender_device_id <> $1
			ORDER BY m.seq LIMIT $4) m
		ORDER BY m.seq LIMIT $4)
	ORDER BY 1 LIMIT $4`

// Messages returns what deviceID receives in the conversation after
// afterSeq, ascending, at most limit (none when limit <= 0).
func (s *Store) Messages(ctx context.Context, deviceID, conversationID string, afterSeq int64, limit int) ([]switchboard.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, messagesQuery, deviceID, conversationID, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: messages of %s for %s: %w", conversationID, deviceID, err)
	}
	ds, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (switchboard.Delivery, error) {
		d := switchboard.Delivery{ConversationID: conversationID}
		err := row.Scan(&d.Seq, &d.SenderUserID, &d.SenderDeviceID, &d.SentAt, &d.Ciphertext)
		d.SentAt = d.SentAt.UTC()
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: messages of %s for %s: %w", conversationID, deviceID, err)
	}
	return ds, nil
}

// Cursors returns the acked seq per conversation of the device.
func (s *Store) Cursors(ctx context.Context, deviceID string) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT conversation_id, acked_seq FROM cursors WHERE device_id = $1`, deviceID)
	if err != nil {
		return nil, fmt.Errorf("postgres: cursors of %s: %w", deviceID, err)
	}
	cursors := make(map[string]int64)
	var conv string
	var seq int64
	_, err = pgx.ForEachRow(rows, []any{&conv, &seq}, func() error {
		cursors[conv] = seq
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: cursors of %s: %w", deviceID, err)
	}
	return cursors, nil
}
