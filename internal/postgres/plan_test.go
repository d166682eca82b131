package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/switchboard-chat/switchboard/internal/postgres"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestUserQueriesUseIndexes checks the plans of the statements every
// connect runs (Heads) or a conversation list runs, on a database just
// loaded and never analyzed, as a fresh deployment or a benchmark has it:
// they must probe the primary key per conversation of the user, not scan
// every conversation (a join on members did, 75 ms per connect at 14k
// conversations).
func TestUserQueriesUseIndexes(t *testing.T) {
	ctx := context.Background()
	url := testenv.Postgres(t)
	s := open(t, url)
	migrate(t, s)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// 2,000 users; each in 2 direct conversations and one group of 10.
	for _, q := range []string{
		`INSERT INTO users (id, username, password_hash, created_at)
			SELECT 'u' || i, 'user' || i, 'h', now() FROM generate_series(0, 1999) i`,
		`INSERT INTO conversations (id, kind, created_by, created_at)
			SELECT 'd' || i, 'direct', 'u' || i, now() FROM generate_series(0, 1999) i`,
		`INSERT INTO conversations (id, kind, created_by, created_at)
			SELECT 'g' || i, 'group', 'u' || i, now() FROM generate_series(0, 199) i`,
		`INSERT INTO members (conversation_id, user_id, joined_at)
			SELECT 'd' || i, 'u' || i, now() FROM generate_series(0, 1999) i
			UNION ALL SELECT 'd' || i, 'u' || ((i + 1) % 2000), now() FROM generate_series(0, 1999) i
			UNION ALL SELECT 'g' || (i / 10), 'u' || i, now() FROM generate_series(0, 1999) i`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for name, q := range postgres.UserQueries {
		args := []any{"u7"}
		if name == "Conversations" {
			args = append(args, "", 100) // the first page
		}
		rows, err := conn.Query(ctx, "EXPLAIN "+q, args...)
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", name, err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		plan := strings.Join(lines, "\n")
		if strings.Contains(plan, "Seq Scan on conversations") || !strings.Contains(plan, "conversations_pkey") {
			t.Errorf("%s scans the conversations instead of probing their primary key:\n%s", name, plan)
		}
	}
	// Contacts must probe the members index per conversation of the user and
	// stop at its row limit, not scan every membership of the database.
	rows, err := conn.Query(ctx, "EXPLAIN "+postgres.ContactsQuery, "u7", 10000)
	if err != nil {
		t.Fatalf("EXPLAIN Contacts: %v", err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if plan := strings.Join(lines, "\n"); strings.Contains(plan, "Seq Scan on members") || !strings.Contains(plan, "Limit") {
		t.Errorf("Contacts scans every membership or reads without a limit:\n%s", plan)
	}
}
