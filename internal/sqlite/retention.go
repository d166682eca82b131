package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// PurgeBefore deletes up to limit messages sent before t, oldest first, and
// returns how many it deleted. Their ciphertexts go with them (ON DELETE
// CASCADE, through the index of migration 0002). Head seqs and cursors are
// left alone, so no seq is ever assigned twice; the purged client ids are
// forgotten, so a late retry of one is stored as a new message.
func (s *Store) PurgeBefore(ctx context.Context, t time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	// DELETE ... LIMIT needs a compile-time option of SQLite: pick the
	// rowids instead. One statement is one short write transaction.
	res, err := s.w.ExecContext(ctx, `DELETE FROM messages WHERE rowid IN
		(SELECT rowid FROM messages WHERE sent_at < ? ORDER BY sent_at LIMIT ?)`, micros(t), limit)
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge messages before %s: %w", t.UTC().Format(time.RFC3339Nano), err)
	}
	// Counts the messages only: SQLite leaves cascaded rows out of changes().
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge messages before %s: %w", t.UTC().Format(time.RFC3339Nano), err)
	}
	return int(n), nil
}

// PurgeAcked deletes up to limit ciphertext rows at or below their device's
// cursor, then those of the messages they belonged to that have no row left,
// in one transaction, and returns how many rows of both it deleted.
//
// The search starts from the cursors: each is one range of the ciphertexts'
// key (device, conversation, seq), every row of which can go, so rows not
// yet acked are never read however many pile up. (CROSS JOIN makes SQLite
// keep the cursors as the outer loop; left to itself, on small or
// unanalyzed tables, it scans the ciphertexts instead.) A message stored
// with no recipient at all is left to PurgeBefore.
func (s *Store) PurgeAcked(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int
	err := s.write(ctx, func(tx *sql.Tx) error {
		touched, rows, err := purgeAckedCiphertexts(ctx, tx, limit)
		if err != nil || rows == 0 {
			return err
		}
		keys, err := json.Marshal(touched)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM messages
			WHERE (conversation_id, seq) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))
			AND NOT EXISTS (SELECT 1 FROM message_ciphertexts c
				WHERE c.conversation_id = messages.conversation_id AND c.seq = messages.seq)`, string(keys))
		if err != nil {
			return fmt.Errorf("messages left without ciphertexts: %w", err)
		}
		messages, err := res.RowsAffected()
		if err != nil {
			return err
		}
		n = rows + int(messages)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge acked ciphertexts: %w", err)
	}
	return n, nil
}

// purgeAckedCiphertexts deletes up to limit acked ciphertext rows and
// returns how many, with the (conversation id, seq) of each message that
// lost one, once each.
func purgeAckedCiphertexts(ctx context.Context, tx *sql.Tx, limit int) ([][2]any, int, error) {
	rows, err := tx.QueryContext(ctx, `DELETE FROM message_ciphertexts
		WHERE (device_id, conversation_id, seq) IN (
			SELECT c.device_id, c.conversation_id, c.seq FROM cursors k
			CROSS JOIN message_ciphertexts c ON c.device_id = k.device_id
				AND c.conversation_id = k.conversation_id AND c.seq <= k.acked_seq
			LIMIT ?)
		RETURNING conversation_id, seq`, limit)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	type key struct {
		conv string
		seq  int64
	}
	seen := make(map[key]bool)
	var keys [][2]any
	n := 0
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.conv, &k.seq); err != nil {
			return nil, 0, err
		}
		n++
		if !seen[k] {
			seen[k] = true
			keys = append(keys, [2]any{k.conv, k.seq})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	return keys, n, nil
}
