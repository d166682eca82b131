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
// returns how many it deleted. Their ciphertexts go with them (ON DELETE
// CASCADE, through the index of migration 0002). Head seqs and cursors are
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
		tag, err := tx.Exec(ctx, `DELETE FROM messages WHERE ctid IN
			(SELECT ctid FROM messages WHERE sent_at < $1 ORDER BY sent_at LIMIT $2)`, t, limit)
		// Counts the messages only: cascaded rows are not in the tag.
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: purge messages before %s: %w", t.UTC().Format(time.RFC3339Nano), err)
	}
	return int(n), nil
}

// PurgeAcked deletes up to limit ciphertext rows at or below their device's
// cursor, then those of the messages they belonged to that have no row left,
// in one transaction, and returns how many rows of both it deleted.
//
// The search starts from the cursors: each is one range of the ciphertexts'
// key (device, conversation, seq), every row of which can go, so rows not
// yet acked are never read however many pile up. A message stored with no
// recipient at all is left to PurgeBefore.
func (s *Store) PurgeAcked(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int64
	err := s.purge(ctx, func(tx pgx.Tx) error {
		convs, seqs, rows, err := purgeAckedCiphertexts(ctx, tx, limit)
		if err != nil || rows == 0 {
			return err
		}
		// A second statement, not a second CTE of the first: it must see
		// the first one's deletes.
		tag, err := tx.Exec(ctx, `DELETE FROM messages m
			USING unnest($1::text[], $2::bigint[]) AS g (conversation_id, seq)
			WHERE m.conversation_id = g.conversation_id AND m.seq = g.seq
			AND NOT EXISTS (SELECT 1 FROM message_ciphertexts c
				WHERE c.conversation_id = m.conversation_id AND c.seq = m.seq)`, convs, seqs)
		if err != nil {
			return fmt.Errorf("messages left without ciphertexts: %w", err)
		}
		n = rows + tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: purge acked ciphertexts: %w", err)
	}
	return int(n), nil
}

// purgeAckedCiphertexts deletes up to limit acked ciphertext rows and
// returns how many, with the conversation id and seq of each message that
// lost one, once each.
func purgeAckedCiphertexts(ctx context.Context, tx pgx.Tx, limit int) ([]string, []int64, int64, error) {
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
		return nil, nil, 0, err
	}
	type key struct {
		conv string
		seq  int64
	}
	seen := make(map[key]bool)
	var convs []string
	var seqs []int64
	var k key
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&k.conv, &k.seq}, func() error {
		n++
		if !seen[k] {
			seen[k] = true
			convs, seqs = append(convs, k.conv), append(seqs, k.seq)
		}
		return nil
	})
	if err != nil {
		return nil, nil, 0, err
	}
	return convs, seqs, n, nil
}
