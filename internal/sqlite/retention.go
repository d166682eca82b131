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
// CASCADE, through the index of migration 0002), and so do the recipient
// epochs its deletes leave unneeded (dropEpochs). Head seqs and cursors are
// left alone, so no seq is ever assigned twice; the purged client ids are
// forgotten, so a late retry of one is stored as a new message.
func (s *Store) PurgeBefore(ctx context.Context, t time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	n := 0
	err := s.write(ctx, func(tx *sql.Tx) error {
		// DELETE ... LIMIT needs a compile-time option of SQLite: pick
		// the rowids instead.
		rows, err := tx.QueryContext(ctx, `DELETE FROM messages WHERE rowid IN
			(SELECT rowid FROM messages WHERE sent_at < ? ORDER BY sent_at LIMIT ?)
			RETURNING conversation_id, seq, shared_ciphertext IS NOT NULL`, micros(t), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		var shared messageKeys
		for rows.Next() {
			var k messageKey
			var isShared bool
			if err := rows.Scan(&k.conv, &k.seq, &isShared); err != nil {
				return err
			}
			n++
			if isShared {
				shared.add(k)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		return dropEpochs(ctx, tx, shared)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge messages before %s: %w", t.UTC().Format(time.RFC3339Nano), err)
	}
	return n, nil
}

// PurgeAcked deletes up to limit ciphertext rows at or below their device's
// cursor, then those of the messages they belonged to that have no row
// left, then, within what is left of limit, the shared messages that every
// device of their epoch has acked, in one transaction, and returns how many
// rows of the three it deleted.
//
// The search for rows starts from the cursors: each is one range of the
// ciphertexts' key (device, conversation, seq), every row of which can go,
// so rows not yet acked are never read however many pile up. (CROSS JOIN
// makes SQLite keep the cursors as the outer loop; left to itself, on small
// or unanalyzed tables, it scans the ciphertexts instead.) A message stored
// with no recipient at all is left to PurgeBefore. Shared messages: see
// purgeAckedShared.
func (s *Store) PurgeAcked(ctx context.Context, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int
	err := s.write(ctx, func(tx *sql.Tx) error {
		touched, rows, err := purgeAckedCiphertexts(ctx, tx, limit)
		if err != nil {
			return err
		}
		n = rows
		if rows > 0 {
			// A shared message of an epoch lost only its sender's row
			// (internal/sqlcore/epochs.go): it waits for its epoch's devices below. One
			// stored before epochs (below the first) had a row per
			// device, and goes with the last.
			res, err := tx.ExecContext(ctx, `DELETE FROM messages
				WHERE (conversation_id, seq) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))
				AND NOT EXISTS (SELECT 1 FROM message_ciphertexts c
					WHERE c.conversation_id = messages.conversation_id AND c.seq = messages.seq)
				AND (shared_ciphertext IS NULL OR NOT EXISTS (SELECT 1 FROM shared_epochs e
					WHERE e.conversation_id = messages.conversation_id AND e.from_seq <= messages.seq))`,
				touched.json())
			if err != nil {
				return fmt.Errorf("messages left without ciphertexts: %w", err)
			}
			messages, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += int(messages)
		}
		if rows >= limit {
			return nil
		}
		shared, err := purgeAckedShared(ctx, tx, limit-rows)
		if err != nil {
			return fmt.Errorf("acked shared messages: %w", err)
		}
		n += shared.len()
		return dropEpochs(ctx, tx, shared)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purge acked ciphertexts: %w", err)
	}
	return n, nil
}

// purgeAckedCiphertexts deletes up to limit acked ciphertext rows and
// returns how many, with the (conversation id, seq) of each message that
// lost one, once each.
func purgeAckedCiphertexts(ctx context.Context, tx *sql.Tx, limit int) (messageKeys, int, error) {
	rows, err := tx.QueryContext(ctx, `DELETE FROM message_ciphertexts
		WHERE (device_id, conversation_id, seq) IN (
			SELECT c.device_id, c.conversation_id, c.seq FROM cursors k
			CROSS JOIN message_ciphertexts c ON c.device_id = k.device_id
				AND c.conversation_id = k.conversation_id AND c.seq <= k.acked_seq
			LIMIT ?)
		RETURNING conversation_id, seq`, limit)
	if err != nil {
		return messageKeys{}, 0, err
	}
	keys, n, err := scanKeys(rows)
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
// d1 sent it. Each epoch's devices are read through liveDevices; its
// messages are then one range of their key, from from_seq to the lower of
// c2 and the next epoch's from_seq, lowest first up to the limit. So a call
// reads every epoch's device list (as the search for rows reads every
// cursor), and of the messages only those it can delete, and those in
// (c1, c2] sent by others than d1. The bounds are MATERIALIZED: inlined,
// SQLite computes them again for every message it reads, and cannot use
// them to bound the range.
func purgeAckedShared(ctx context.Context, tx *sql.Tx, limit int) (messageKeys, error) {
	rows, err := tx.QueryContext(ctx, `WITH low AS MATERIALIZED (
			SELECT e.conversation_id, e.from_seq,
				(SELECT r.device_id `+liveDevices+` ORDER BY coalesce(k.acked_seq, 0) LIMIT 1) AS d1,
				coalesce((SELECT min(coalesce(k.acked_seq, 0)) `+liveDevices+`), 9223372036854775807) AS c1,
				coalesce((SELECT min(n.from_seq) FROM shared_epochs n
					WHERE n.conversation_id = e.conversation_id AND n.from_seq > e.from_seq),
					9223372036854775807) AS to_seq
			FROM shared_epochs e
		), bounds AS MATERIALIZED (
			SELECT e.*, coalesce((SELECT min(coalesce(k.acked_seq, 0)) `+liveDevices+`
				AND r.device_id <> e.d1), 9223372036854775807) AS c2
			FROM low e
		)
		DELETE FROM messages WHERE rowid IN (
			SELECT m.rowid FROM bounds e CROSS JOIN messages m
			WHERE m.conversation_id = e.conversation_id AND m.seq >= e.from_seq
				AND m.seq < e.to_seq AND m.seq <= e.c2
				AND m.shared_ciphertext IS NOT NULL
				AND m.seq <= CASE WHEN m.sender_device_id = e.d1 THEN e.c2 ELSE e.c1 END
				AND NOT EXISTS (SELECT 1 FROM message_ciphertexts c
					WHERE c.conversation_id = m.conversation_id AND c.seq = m.seq)
			LIMIT ?)
		RETURNING conversation_id, seq`, limit)
	if err != nil {
		return messageKeys{}, err
	}
	keys, _, err := scanKeys(rows)
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
func dropEpochs(ctx context.Context, tx *sql.Tx, shared messageKeys) error {
	if shared.len() == 0 {
		return nil
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM shared_epochs AS x
		WHERE (conversation_id, from_seq) IN (
			SELECT e.conversation_id, e.from_seq FROM json_each(?) g
			CROSS JOIN shared_epochs e ON e.conversation_id = g.value ->> 0
			WHERE e.from_seq <= g.value ->> 1
				AND e.from_seq >= coalesce((SELECT n.from_seq FROM shared_epochs n
					WHERE n.conversation_id = g.value ->> 0 AND n.from_seq <= g.value ->> 1
					ORDER BY n.from_seq DESC LIMIT 1 OFFSET 1), 0))
		AND from_seq <> (SELECT c.shared_from_seq FROM conversations c WHERE c.id = x.conversation_id)
		AND NOT EXISTS (SELECT 1 FROM messages m
			WHERE m.conversation_id = x.conversation_id AND m.seq >= x.from_seq
				AND m.seq < (SELECT min(n.from_seq) FROM shared_epochs n
					WHERE n.conversation_id = x.conversation_id AND n.from_seq > x.from_seq)
				AND m.shared_ciphertext IS NOT NULL)`, shared.json())
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

// messageKeys are distinct message keys.
type messageKeys struct {
	seen map[messageKey]bool
	keys [][2]any
}

func (ks *messageKeys) add(k messageKey) {
	if ks.seen == nil {
		ks.seen = make(map[messageKey]bool)
	}
	if !ks.seen[k] {
		ks.seen[k] = true
		ks.keys = append(ks.keys, [2]any{k.conv, k.seq})
	}
}

func (ks *messageKeys) len() int { return len(ks.keys) }

// json returns the keys as a JSON array of [conversation id, seq], for json_each.
func (ks *messageKeys) json() string {
	b, _ := json.Marshal(ks.keys) // strings and integers: cannot fail
	return string(b)
}

// scanKeys reads rows of (conversation_id, seq) and closes them: the
// distinct keys and how many rows.
func scanKeys(rows *sql.Rows) (messageKeys, int, error) {
	defer rows.Close()
	var keys messageKeys
	n := 0
	for rows.Next() {
		var k messageKey
		if err := rows.Scan(&k.conv, &k.seq); err != nil {
			return messageKeys{}, 0, err
		}
		n++
		keys.add(k)
	}
	return keys, n, rows.Err()
}
