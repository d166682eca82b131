package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"

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
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO members (conversation_id, user_id, joined_at)
			VALUES (?, ?, ?) ON CONFLICT DO NOTHING`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, userID := range c.Members {
			if _, err := stmt.ExecContext(ctx, c.ID, userID, micros(c.CreatedAt)); err != nil {
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

// conversationQuery selects a conversation with its members as a JSON
// array, so that one statement reads both consistently.
const conversationQuery = `SELECT c.id, c.kind, c.title, c.created_by, c.created_at, c.head_seq,
	(SELECT json_group_array(m.user_id) FROM members m WHERE m.conversation_id = c.id)
	FROM conversations c`

func scanConversation(row interface{ Scan(...any) error }) (*switchboard.Conversation, error) {
	var c switchboard.Conversation
	var created int64
	var members string
	if err := row.Scan(&c.ID, &c.Kind, &c.Title, &c.CreatedBy, &created, &c.HeadSeq, &members); err != nil {
		return nil, err
	}
	c.CreatedAt = fromMicros(created)
	if err := json.Unmarshal([]byte(members), &c.Members); err != nil {
		return nil, fmt.Errorf("members of %s: %w", c.ID, err)
	}
	// SQLite does not promise json_group_array's order.
	sort.Strings(c.Members)
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

// Conversations lists the conversations userID is a member of, by id.
func (s *Store) Conversations(ctx context.Context, userID string) ([]switchboard.Conversation, error) {
	rows, err := s.r.QueryContext(ctx, conversationQuery+`
		JOIN members me ON me.conversation_id = c.id AND me.user_id = ?
		ORDER BY c.id`, userID)
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

// Heads returns the head seq of each conversation userID is a member of.
func (s *Store) Heads(ctx context.Context, userID string) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT c.id, c.head_seq FROM conversations c
		JOIN members me ON me.conversation_id = c.id AND me.user_id = ?`, userID)
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
