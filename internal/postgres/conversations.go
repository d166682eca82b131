package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/switchboard-chat/switchboard"
)

// CreateConversation stores c (its HeadSeq starts at 0) with its members,
// each of whom joins at c.CreatedAt.
func (s *Store) CreateConversation(ctx context.Context, c *switchboard.Conversation) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO conversations (id, kind, title, created_by, created_at, head_seq)
			VALUES ($1, $2, $3, $4, $5, 0)`, c.ID, c.Kind, c.Title, c.CreatedBy, c.CreatedAt)
		if err != nil {
			return err
		}
		// DISTINCT and ON CONFLICT: a member listed twice joins once.
		admins := c.Admins
		if admins == nil {
			admins = []string{}
		}
		_, err = tx.Exec(ctx, `INSERT INTO members (conversation_id, user_id, joined_at, admin)
			SELECT DISTINCT $1, u, $2::timestamptz, u = ANY ($4::text[]) FROM unnest($3::text[]) AS u
			ON CONFLICT DO NOTHING`, c.ID, c.CreatedAt, c.Members, admins)
		return err
	})
	// Even after an error: a commit whose answer was lost may have happened.
	keys := make([]string, len(c.Members))
	for i, m := range c.Members {
		keys[i] = userKey(m)
	}
	s.replicas.wrote(keys...)
	if err != nil {
		return fmt.Errorf("postgres: create conversation %s: %w", c.ID, err)
	}
	return nil
}

// conversationQuery selects a conversation with its sorted members, so that
// one statement reads both consistently.
const conversationQuery = `SELECT c.id, c.kind, c.title, c.created_by, c.created_at, c.head_seq,
	ARRAY (SELECT m.user_id FROM members m WHERE m.conversation_id = c.id ORDER BY m.user_id),
	ARRAY (SELECT m.user_id FROM members m WHERE m.conversation_id = c.id AND m.admin ORDER BY m.user_id)
	FROM conversations c`

func scanConversation(row pgx.Row) (switchboard.Conversation, error) {
	var c switchboard.Conversation
	err := row.Scan(&c.ID, &c.Kind, &c.Title, &c.CreatedBy, &c.CreatedAt, &c.HeadSeq, &c.Members, &c.Admins)
	c.CreatedAt = c.CreatedAt.UTC()
	return c, err
}

// Conversation returns the conversation with its sorted members and head seq.
func (s *Store) Conversation(ctx context.Context, id string) (*switchboard.Conversation, error) {
	c, err := scanConversation(s.pool.QueryRow(ctx, conversationQuery+` WHERE c.id = $1`, id))
	if err != nil {
		return nil, fmt.Errorf("postgres: conversation %s: %w", id, notFound(err))
	}
	return &c, nil
}

// Conversations lists up to limit of userID's conversations with an id
// above after, by id. Under switchboard.MayLag it may read a replica that
// has this node's last write of userID's conversations.
func (s *Store) Conversations(ctx context.Context, userID, after string, limit int) ([]switchboard.Conversation, error) {
	var cs []switchboard.Conversation
	err := s.read(ctx, []string{userKey(userID)}, func(q *pgxpool.Pool, _ bool) error {
		rows, err := q.Query(ctx, conversationsQuery, userID, after, limit)
		if err != nil {
			return err
		}
		cs, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (switchboard.Conversation, error) {
			return scanConversation(row)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: conversations of %s: %w", userID, err)
	}
	return cs, nil
}

// userKey names what a user's lagging reads (conversation list, device
// directory) depend on, for the replicas' read-your-writes (replicaSet.wrote).
func userKey(userID string) string { return "u:" + userID }

// contactsQuery reads the members of user $1's conversations, one index
// probe per conversation (OFFSET 0 keeps the lateral query a nested loop,
// as in userConversations), and stops after $2 rows: the read is bounded
// whatever the number of groups.
const contactsQuery = `SELECT DISTINCT x.user_id FROM (
	SELECT m.user_id FROM members me CROSS JOIN LATERAL (
		SELECT m.user_id FROM members m WHERE m.conversation_id = me.conversation_id OFFSET 0) m
	WHERE me.user_id = $1 LIMIT $2) x`

// Contacts returns the distinct users of the first limit membership rows of
// userID's conversations.
func (s *Store) Contacts(ctx context.Context, userID string, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, contactsQuery, userID, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: contacts of %s: %w", userID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: contacts of %s: %w", userID, err)
	}
	return out, nil
}

// Block records that userID blocks blockedID.
func (s *Store) Block(ctx context.Context, userID, blockedID string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO blocks (user_id, blocked_id, created_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, userID, blockedID, at)
	if err != nil {
		return fmt.Errorf("postgres: %s blocks %s: %w", userID, blockedID, err)
	}
	return nil
}

// Unblock removes userID's block of blockedID.
func (s *Store) Unblock(ctx context.Context, userID, blockedID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM blocks WHERE user_id = $1 AND blocked_id = $2`, userID, blockedID); err != nil {
		return fmt.Errorf("postgres: %s unblocks %s: %w", userID, blockedID, err)
	}
	return nil
}

// Blockers returns those of among who block userID.
func (s *Store) Blockers(ctx context.Context, userID string, among []string) ([]string, error) {
	if len(among) == 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT user_id FROM blocks WHERE blocked_id = $1 AND user_id = ANY ($2)`, userID, among)
	if err != nil {
		return nil, fmt.Errorf("postgres: blockers of %s: %w", userID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: blockers of %s: %w", userID, err)
	}
	return out, nil
}

// userConversations runs a query per conversation of user $1: the
// members index gives the user's conversation ids, and the lateral query,
// which OFFSET 0 keeps from being merged into a join, probes the
// conversations' primary key with each, whatever the planner's statistics
// say. A plain join on members let a planner with stale statistics (a
// freshly loaded database) hash-join against a sequential scan of every
// conversation, on every connect: 75 ms per connect at 14k conversations.
func userConversations(perConversation string) string {
	return `SELECT c.* FROM members me CROSS JOIN LATERAL (` + perConversation +
		` WHERE c.id = me.conversation_id OFFSET 0) c WHERE me.user_id = $1`
}

// conversationsQuery reads user $1's conversations; headsQuery their head seqs.
var (
	conversationsQuery = userConversations(conversationQuery) + ` AND me.conversation_id > $2 ORDER BY me.conversation_id LIMIT $3`
	headsQuery         = userConversations(`SELECT c.id, c.head_seq FROM conversations c`) +
		` UNION ALL SELECT conversation_id, left_seq FROM former_members WHERE user_id = $1`
)

// Membership returns userID's membership of the conversation, current or former.
func (s *Store) Membership(ctx context.Context, conversationID, userID string) (switchboard.Membership, error) {
	var m switchboard.Membership
	err := s.pool.QueryRow(ctx, `SELECT admin, joined_seq, 0::bigint FROM members WHERE conversation_id = $1 AND user_id = $2
		UNION ALL SELECT false, 0, left_seq FROM former_members WHERE conversation_id = $1 AND user_id = $2`,
		conversationID, userID).Scan(&m.Admin, &m.JoinedSeq, &m.LeftSeq)
	if err != nil {
		return m, fmt.Errorf("postgres: membership of %s in %s: %w", userID, conversationID, notFound(err))
	}
	return m, nil
}

// Heads returns the head seq of each conversation userID is a member of.
func (s *Store) Heads(ctx context.Context, userID string) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, headsQuery, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: heads of %s: %w", userID, err)
	}
	heads := make(map[string]int64)
	var id string
	var seq int64
	_, err = pgx.ForEachRow(rows, []any{&id, &seq}, func() error {
		heads[id] = seq
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: heads of %s: %w", userID, err)
	}
	return heads, nil
}
