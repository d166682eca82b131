package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/sqlcore"
)

// AppendMessage assigns m.Seq and, when zero, m.SentAt, stores m and moves
// the conversation's head seq, all in one transaction, which it may share
// with concurrent calls (see append.go). A message with per-device
// ciphertexts has a row per recipient device; a shared one has none, only
// a new recipient epoch when its set is not the conversation's current one
// (internal/sqlcore/epochs.go).
// A client id the sender device already used returns the stored message
// (without its ciphertexts) and duplicate=true. An empty ClientID is never
// deduplicated.
func (s *Store) AppendMessage(ctx context.Context, m *switchboard.Message) (*switchboard.Message, bool, error) {
	in := sqlcore.NewAppendIn(m)
	out, err := s.lane(m.ConversationID).Do(ctx, in)
	return sqlcore.Appended("postgres", in, out, err)
}

// AppendMessageAsync is AppendMessage without the wait.
func (s *Store) AppendMessageAsync(m *switchboard.Message, done func(*switchboard.Message, bool, error)) {
	in := sqlcore.NewAppendIn(m)
	s.lane(m.ConversationID).Go(in, func(out sqlcore.AppendOut, err error) { done(sqlcore.Appended("postgres", in, out, err)) })
}

// deviceOwners reads the user of each device of a list: what appends check
// their devices with, once per batch, since migration 0004 dropped the
// foreign keys that checked them per row.
const deviceOwners = `SELECT id, user_id FROM devices WHERE id = ANY ($1)`

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

func (r *ciphertextRows) len() int { return len(r.devices) }

func (r *ciphertextRows) args() []any { return []any{r.convs, r.seqs, r.devices, r.texts} }

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
	(SELECT m.seq, m.sender_user_id, m.sender_device_id, m.sent_at, COALESCE(c.ciphertext, m.shared_ciphertext), m.event
		FROM message_ciphertexts c
		JOIN messages m ON m.conversation_id = c.conversation_id AND m.seq = c.seq
		WHERE c.device_id = $1 AND c.conversation_id = $2 AND c.seq > $3
		ORDER BY c.seq LIMIT $4)
	UNION ALL
	(SELECT m.seq, m.sender_user_id, m.sender_device_id, m.sent_at, m.shared_ciphertext, NULL::bytea
		FROM e CROSS JOIN LATERAL (
			SELECT * FROM messages m
			WHERE m.conversation_id = $2 AND m.seq > $3 AND m.seq >= e.from_seq AND m.seq < e.to_seq
				AND m.shared_ciphertext IS NOT NULL AND m.sender_device_id <> $1
			ORDER BY m.seq LIMIT $4) m
		ORDER BY m.seq LIMIT $4)
	ORDER BY 1 LIMIT $4`

// Messages returns what deviceID receives in the conversation after
// afterSeq, ascending, at most limit (none when limit <= 0).
//
// Under switchboard.MayLag it may read a replica. A full page from a replica
// is complete for its seqs (a conversation's messages commit in seq order),
// but a short one says "nothing more", which a replica behind the primary
// may say wrongly: the replica's head of the conversation (read first, in
// the same round trip) must then be at the primary's, else the page is read
// from the primary. So a device reads back what it just sent, on any node.
func (s *Store) Messages(ctx context.Context, deviceID, conversationID string, afterSeq int64, limit int) ([]switchboard.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	var ds []switchboard.Delivery
	err := s.read(ctx, nil, func(q *pgxpool.Pool, replica bool) error {
		ds = nil
		if !replica {
			rows, err := q.Query(ctx, messagesQuery, deviceID, conversationID, afterSeq, limit)
			if err != nil {
				return err
			}
			ds, err = collectDeliveries(rows, conversationID)
			return err
		}
		var head int64
		b := &pgx.Batch{}
		b.Queue(headQuery, conversationID).QueryRow(func(row pgx.Row) error {
			if err := row.Scan(&head); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			return nil
		})
		b.Queue(messagesQuery, deviceID, conversationID, afterSeq, limit).Query(func(rows pgx.Rows) (err error) {
			ds, err = collectDeliveries(rows, conversationID)
			return err
		})
		if err := q.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if len(ds) == limit {
			return nil
		}
		var primaryHead int64
		if err := s.pool.QueryRow(ctx, headQuery, conversationID).Scan(&primaryHead); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%w: primary head: %w", errBehind, err) // not the replica's fault
		}
		if head < primaryHead {
			return errBehind
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: messages of %s for %s: %w", conversationID, deviceID, err)
	}
	return ds, nil
}

const headQuery = `SELECT head_seq FROM conversations WHERE id = $1`

func collectDeliveries(rows pgx.Rows, conversationID string) ([]switchboard.Delivery, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (switchboard.Delivery, error) {
		d := switchboard.Delivery{ConversationID: conversationID}
		err := row.Scan(&d.Seq, &d.SenderUserID, &d.SenderDeviceID, &d.SentAt, &d.Ciphertext, &d.Event)
		d.SentAt = d.SentAt.UTC()
		return d, err
	})
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
