package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/switchboard-chat/switchboard"
)

// CreateConversation stores c (its HeadSeq starts at 0) with its members,
// each of whom joins at c.CreatedAt.
func (s *Store) CreateConversation(ctx context.Context, c *switchboard.Conversation) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO conversations (id, kind, title, created_by, created_at, head_seq)
			VALUES (?, ?, ?, ?, ?, 0)`, c.ID, c.Kind, c.Title, c.CreatedBy, micros(c.CreatedAt))
		if err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO members (conversation_id, user_id, joined_at, admin)
			VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, userID := range c.Members {
			if _, err := stmt.ExecContext(ctx, c.ID, userID, micros(c.CreatedAt), slices.Contains(c.Admins, userID)); err != nil {
				return fmt.Errorf("member %s: %w", userID, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: create conversation %s: %w", c.ID, err)
	}
	return nil
}

// conversationQuery selects a conversation with its members and its admins
// as JSON arrays, so that one statement reads them consistently.
const conversationQuery = `SELECT c.id, c.kind, c.title, c.created_by, c.created_at, c.head_seq,
	(SELECT json_group_array(m.user_id) FROM members m WHERE m.conversation_id = c.id),
	(SELECT json_group_array(m.user_id) FROM members m WHERE m.conversation_id = c.id AND m.admin)
	FROM conversations c`

func scanConversation(row interface{ Scan(...any) error }) (*switchboard.Conversation, error) {
	var c switchboard.Conversation
	var created int64
	var members, admins string
	if err := row.Scan(&c.ID, &c.Kind, &c.Title, &c.CreatedBy, &created, &c.HeadSeq, &members, &admins); err != nil {
		return nil, err
	}
	c.CreatedAt = fromMicros(created)
	if err := json.Unmarshal([]byte(members), &c.Members); err != nil {
		return nil, fmt.Errorf("members of %s: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(admins), &c.Admins); err != nil {
		return nil, fmt.Errorf("admins of %s: %w", c.ID, err)
	}
	// SQLite does not promise json_group_array's order.
	sort.Strings(c.Members)
	sort.Strings(c.Admins)
	return &c, nil
}

// Conversation returns the conversation with its sorted members and head seq.
func (s *Store) Conversation(ctx context.Context, id string) (*switchboard.Conversation, error) {
	c, err := scanConversation(s.r.QueryRowContext(ctx, conversationQuery+` WHERE c.id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("sqlite: conversation %s: %w", id, notFound(err))
	}
	return c, nil
}

// Conversations lists up to limit of userID's conversations with an id
// above after, by id: the members index (user, conversation) is the range.
func (s *Store) Conversations(ctx context.Context, userID, after string, limit int) ([]switchboard.Conversation, error) {
	rows, err := s.r.QueryContext(ctx, conversationQuery+`
		JOIN members me ON me.conversation_id = c.id AND me.user_id = ?
		WHERE me.conversation_id > ?
		ORDER BY me.conversation_id LIMIT ?`, userID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: conversations of %s: %w", userID, err)
	}
	defer rows.Close()
	cs := []switchboard.Conversation{}
	for rows.Next() {
		c, err := scanConversation(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: conversations of %s: %w", userID, err)
		}
		cs = append(cs, *c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: conversations of %s: %w", userID, err)
	}
	return cs, nil
}

// Contacts returns the distinct users of the first limit membership rows of
// userID's conversations: the inner LIMIT stops the scan, so the read is
// bounded whatever the number of groups.
func (s *Store) Contacts(ctx context.Context, userID string, limit int) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT user_id FROM (
		SELECT m.user_id FROM members me JOIN members m ON m.conversation_id = me.conversation_id
		WHERE me.user_id = ? LIMIT ?)`, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: contacts of %s: %w", userID, err)
	}
	return collectStrings(rows, "contacts of "+userID)
}

// collectStrings reads a one-column result.
func collectStrings(rows *sql.Rows, what string) ([]string, error) {
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

// Block records that userID blocks blockedID.
func (s *Store) Block(ctx context.Context, userID, blockedID string, at time.Time) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO blocks (user_id, blocked_id, created_at) VALUES (?, ?, ?)
		ON CONFLICT DO NOTHING`, userID, blockedID, micros(at))
	if err != nil {
		return fmt.Errorf("sqlite: %s blocks %s: %w", userID, blockedID, err)
	}
	return nil
}

// Unblock removes userID's block of blockedID.
func (s *Store) Unblock(ctx context.Context, userID, blockedID string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM blocks WHERE user_id = ? AND blocked_id = ?`, userID, blockedID); err != nil {
		return fmt.Errorf("sqlite: %s unblocks %s: %w", userID, blockedID, err)
	}
	return nil
}

// Blockers returns those of among who block userID.
func (s *Store) Blockers(ctx context.Context, userID string, among []string) ([]string, error) {
	if len(among) == 0 {
		return nil, nil
	}
	list, err := json.Marshal(among)
	if err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT user_id FROM blocks
		WHERE blocked_id = ? AND user_id IN (SELECT value FROM json_each(?))`, userID, string(list))
	if err != nil {
		return nil, fmt.Errorf("sqlite: blockers of %s: %w", userID, err)
	}
	return collectStrings(rows, "blockers of "+userID)
}

// Membership returns userID's membership of the conversation, current or former.
func (s *Store) Membership(ctx context.Context, conversationID, userID string) (switchboard.Membership, error) {
	var m switchboard.Membership
	err := s.r.QueryRowContext(ctx, `SELECT admin, joined_seq, 0 FROM members WHERE conversation_id = ?1 AND user_id = ?2
		UNION ALL SELECT 0, 0, left_seq FROM former_members WHERE conversation_id = ?1 AND user_id = ?2`,
		conversationID, userID).Scan(&m.Admin, &m.JoinedSeq, &m.LeftSeq)
	if err != nil {
		return m, fmt.Errorf("sqlite: membership of %s in %s: %w", userID, conversationID, notFound(err))
	}
	return m, nil
}

// Heads returns the head seq of each conversation userID is a member of,
// and the seq of their removal from each they left.
func (s *Store) Heads(ctx context.Context, userID string) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT c.id, c.head_seq FROM conversations c
		JOIN members me ON me.conversation_id = c.id AND me.user_id = ?1
		UNION ALL SELECT conversation_id, left_seq FROM former_members WHERE user_id = ?1`, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: heads of %s: %w", userID, err)
	}
	defer rows.Close()
	heads := make(map[string]int64)
	for rows.Next() {
		var id string
		var seq int64
		if err := rows.Scan(&id, &seq); err != nil {
			return nil, fmt.Errorf("sqlite: heads of %s: %w", userID, err)
		}
		heads[id] = seq
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: heads of %s: %w", userID, err)
	}
	return heads, nil
}
