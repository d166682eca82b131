package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// purgeLock is the advisory lock key that purges queue on, so that they run
// one at a time across the cluster. Two purges at once would pick the same
// rows and the second would skip them all and return 0 while older rows
// remain (ending its caller's loop early); two PurgeAcked would each see the
// other's rows of one message still there and neither delete the message;
// and PurgeBefore (message, then its ciphertexts) and PurgeAcked
// (ciphertexts, then their message) lock in opposite orders. Sends never
// take this lock.
const purgeLock int64 = 0x7362707572676521 // "sbpurge!"

// purge runs fn in a transaction holding the purge lock.
func (s *Store) purge(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, purgeLock); err != nil {
			return err
		}
		return fn(tx)
	})
}

// PurgeBefore deletes up to limit messages sent before t, oldest first, and
// returns how many it deleted. Their ciphertexts go with them (a second
// statement, through the index of migration 0002: no foreign key cascades
// since 0004), and so do the recipient epochs its deletes leave unneeded
// (dropEpochs). Head seqs and cursors are
// left alone, so no seq is ever assigned twice; the purged client ids are
// forgotten, so a late retry of one is stored as a new message.
func (s *Store) PurgeBefore(ctx context.Context, t time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int64
	err := s.purge(ctx, func(tx pgx.Tx) error {
		// The statement's snapshot is taken after the lock: it sees what
		// the purge before it deleted.
		// ctid, not the key: with the key the planner joins the picked
		// rows to a sequential scan of messages; with ctid it fetches each.
		rows, err := tx.Query(ctx, `DELETE FROM messages WHERE ctid IN
			(SELECT ctid FROM messages WHERE sent_at < $1 ORDER BY sent_at LIMIT $2)
			RETURNING conversation_id, seq, shared_ciphertext IS NOT NULL`, t, limit)
		if err != nil {
			return err
		}
		var all, shared messageKeys
		var k messageKey
		var isShared bool
		_, err = pgx.ForEachRow(rows, []any{&k.conv, &k.seq, &isShared}, func() error {
			n++
			all.add(k)
			if isShared {
				shared.add(k)
			}
			return nil
		})
		if err != nil || n == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM message_ciphertexts c
			USING unnest($1::text[], $2::bigint[]) AS g (conversation_id, seq)
			WHERE c.conversation_id = g.conversation_id AND c.seq = g.seq`, all.convs, all.seqs)
		if err != nil {
			return fmt.Errorf("ciphertexts of the purged messages: %w", err)
		}
		return dropEpochs(ctx, tx, shared)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: purge messages before %s: %w", t.UTC().Format(time.RFC3339Nano), err)
	}
	return int(n), nil
}

// PurgeAcked deletes up to limit ciphertext rows at or below their device's
// cursor, then those of the messages they belonged to that have no row
// left, then, within what is left of limit, the shared messages that every
// device of their epoch has acked, in one transaction, and returns how many
// rows of the three it deleted.
//
// The search for rows starts from the cursors: each is one range of the
// ciphertexts' key (device, conversation, seq), every row of which can go,
// so rows not yet acked are never read however many pile up. A message
// stored with no recipient at all is left to PurgeBefore. Shared messages:
// see purgeAckedShared.
func (s *Store) PurgeAcked(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int64
	err := s.purge(ctx, func(tx pgx.Tx) error {
		touched, rows, err := purgeAckedCiphertexts(ctx, tx, limit)
		if err != nil {
			return err
		}
		n = rows
		if rows > 0 {
			// A second statement, not a second CTE of the first: it must
			// see the first one's deletes. A shared message of an epoch
			// lost only its sender's row (internal/sqlcore/epochs.go): it waits for its
			// epoch's devices below. One stored before epochs (below the
			// first) had a row per device, and goes with the last.
			tag, err := tx.Exec(ctx, `DELETE FROM messages m
				USING unnest($1::text[], $2::bigint[]) AS g (conversation_id, seq)
				WHERE m.conversation_id = g.conversation_id AND m.seq = g.seq
				AND NOT EXISTS (SELECT 1 FROM message_ciphertexts c
					WHERE c.conversation_id = m.conversation_id AND c.seq = m.seq)
				AND (m.shared_ciphertext IS NULL OR NOT EXISTS (SELECT 1 FROM shared_epochs e
					WHERE e.conversation_id = m.conversation_id AND e.from_seq <= m.seq))`,
				touched.convs, touched.seqs)
			if err != nil {
				return fmt.Errorf("messages left without ciphertexts: %w", err)
			}
			n += tag.RowsAffected()
		}
		if rows >= int64(limit) {
			return nil
		}
		shared, err := purgeAckedShared(ctx, tx, limit-int(rows))
		if err != nil {
			return fmt.Errorf("acked shared messages: %w", err)
		}
		n += int64(shared.len())
		return dropEpochs(ctx, tx, shared)
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: purge acked ciphertexts: %w", err)
	}
	return int(n), nil
}

// purgeAckedCiphertexts deletes up to limit acked ciphertext rows and
// returns how many, with the conversation id and seq of each message that
// lost one, once each.
func purgeAckedCiphertexts(ctx context.Context, tx pgx.Tx, limit int) (messageKeys, int64, error) {
	// LATERAL keeps the cursors as the outer loop, each reading its own
	// range of the primary key, lowest seq first, up to the limit. With a
	// plain join the planner hashes the cursors and scans every ciphertext,
	// acked or not, so a call grows with the table; without the ORDER BY it
	// tends to bitmap-scan whole ranges, dead rows awaiting VACUUM included.
	rows, err := tx.Query(ctx, `DELETE FROM message_ciphertexts WHERE ctid IN (
			SELECT c.ctid FROM cursors k CROSS JOIN LATERAL (
				SELECT c.ctid FROM message_ciphertexts c
				WHERE c.device_id = k.device_id AND c.conversation_id = k.conversation_id
					AND c.seq <= k.acked_seq
				ORDER BY c.seq LIMIT $1) c
			LIMIT $1)
		RETURNING conversation_id, seq`, limit)
	if err != nil {
		return messageKeys{}, 0, err
	}
	var keys messageKeys
	var k messageKey
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&k.conv, &k.seq}, func() error {
		n++
		keys.add(k)
		return nil
	})
	return keys, n, err
}

// liveDevices are the devices of epoch e that are not revoked, with their
// cursor in its conversation (a missing cursor is 0), read through the
// epoch's index (conversation_id, from_seq) and one probe each of the keys
// of devices and cursors. The subqueries of purgeAckedShared add to it.
const liveDevices = `FROM shared_recipients r
	JOIN devices d ON d.id = r.device_id AND d.revoked_at IS NULL
	LEFT JOIN cursors k ON k.device_id = r.device_id AND k.conversation_id = r.conversation_id
	WHERE r.conversation_id = e.conversation_id AND r.from_seq = e.from_seq`

// purgeAckedShared deletes up to limit shared messages that every recipient
// has acked, and returns their keys. A shared message may go once every
// device of its epoch but its sender has a cursor at or past its seq in the
// conversation (a missing cursor is 0), or is revoked; and its sender's own
// row, if it has one (internal/sqlcore/epochs.go), is gone.
//
// Per epoch that is one bound, not a walk of the devices per message: the
// least cursor c1 of its live devices (its device d1) and the least of the
// others, c2. A message may go if its seq is at most c1, or at most c2 when
// d1 sent it. Each epoch's devices are read through the epoch's index
// (conversation_id, from_seq), each with one probe of the cursors' key and
// one of the devices'; its messages are then one range of their key, from
// from_seq to the lower of c2 and the next epoch's from_seq, lowest first up
// to the limit. So a call reads every epoch's device list (as the search
// for rows reads every cursor), and of the messages only those it can
// delete, and those in (c1, c2] sent by others than d1. (Checked with
// EXPLAIN ANALYZE on 80 epochs of 500 devices over 800,000 messages.)
func purgeAckedShared(ctx context.Context, tx pgx.Tx, limit int) (messageKeys, error) {
	// No CTE of the devices: referenced twice, it would be materialized
	// whole and scanned once per epoch.
	rows, err := tx.Query(ctx, `WITH e AS (
			SELECT e.conversation_id, e.from_seq, l.device_id AS d1,
				COALESCE(l.acked, 9223372036854775807) AS c1,
				COALESCE((SELECT min(COALESCE(k.acked_seq, 0)) `+liveDevices+`
					AND r.device_id <> l.device_id), 9223372036854775807) AS c2,
				COALESCE((SELECT min(n.from_seq) FROM shared_epochs n
					WHERE n.conversation_id = e.conversation_id AND n.from_seq > e.from_seq),
					9223372036854775807) AS to_seq
			FROM shared_epochs e
			LEFT JOIN LATERAL (SELECT r.device_id, COALESCE(k.acked_seq, 0) AS acked `+liveDevices+`
				ORDER BY 2 LIMIT 1) l ON true
		)
		DELETE FROM messages WHERE ctid IN (
			SELECT m.ctid FROM e CROSS JOIN LATERAL (
				SELECT m.ctid FROM messages m
				WHERE m.conversation_id = e.conversation_id AND m.seq >= e.from_seq
					AND m.seq < e.to_seq AND m.seq <= e.c2
					AND m.shared_ciphertext IS NOT NULL
					AND m.seq <= CASE WHEN m.sender_device_id = e.d1 THEN e.c2 ELSE e.c1 END
					AND NOT EXISTS (SELECT 1 FROM message_ciphertexts c
						WHERE c.conversation_id = m.conversation_id AND c.seq = m.seq)
				ORDER BY m.seq LIMIT $1) m
			LIMIT $1)
		RETURNING conversation_id, seq`, limit)
	if err != nil {
		return messageKeys{}, err
	}
	var keys messageKeys
	var k messageKey
	_, err = pgx.ForEachRow(rows, []any{&k.conv, &k.seq}, func() error {
		keys.add(k)
		return nil
	})
	return keys, err
}

// dropEpochs deletes the epochs that deleting the given shared messages
// left unneeded: an epoch with no shared message left in its range that is
// not its conversation's current one (appends rely on that one: a message
// to the same set adds no row). Each message's epoch is a candidate, and
// so is the epoch before it, which was current and kept when its last
// messages went, and has since been superseded. So no unneeded epoch
// outlives the next purge of a shared message of its conversation.
//
// A candidate is kept as soon as one shared message is found in its range,
// read in key order.
//
// Appends lock no epoch: an epoch once superseded never gets a message
// again, so what this reads of conversations (the current epoch) cannot
// turn stale in a way that matters.
func dropEpochs(ctx context.Context, tx pgx.Tx, shared messageKeys) error {
	if shared.len() == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `DELETE FROM shared_epochs x
		USING (SELECT DISTINCT e.conversation_id, e.from_seq
			FROM unnest($1::text[], $2::bigint[]) AS g (conversation_id, seq)
			CROSS JOIN LATERAL (SELECT e.conversation_id, e.from_seq FROM shared_epochs e
				WHERE e.conversation_id = g.conversation_id AND e.from_seq <= g.seq
				ORDER BY e.from_seq DESC LIMIT 2) e) g,
			conversations c
		WHERE x.conversation_id = g.conversation_id AND x.from_seq = g.from_seq
			AND c.id = x.conversation_id AND c.shared_from_seq <> x.from_seq
			AND NOT EXISTS (SELECT 1 FROM messages m
				WHERE m.conversation_id = x.conversation_id AND m.seq >= x.from_seq
					AND m.seq < (SELECT min(n.from_seq) FROM shared_epochs n
						WHERE n.conversation_id = x.conversation_id AND n.from_seq > x.from_seq)
					AND m.shared_ciphertext IS NOT NULL)`, shared.convs, shared.seqs)
	if err != nil {
		return fmt.Errorf("unneeded epochs: %w", err)
	}
	return nil
}

// messageKey is a message's key.
type messageKey struct {
	conv string
	seq  int64
}

// messageKeys are distinct message keys, as two arrays for unnest.
type messageKeys struct {
	seen  map[messageKey]bool
	convs []string
	seqs  []int64
}

func (ks *messageKeys) add(k messageKey) {
	if ks.seen == nil {
		ks.seen = make(map[messageKey]bool)
	}
	if !ks.seen[k] {
		ks.seen[k] = true
		ks.convs, ks.seqs = append(ks.convs, k.conv), append(ks.seqs, k.seq)
	}
}

func (ks *messageKeys) len() int { return len(ks.convs) }
