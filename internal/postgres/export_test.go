package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// OpenLanes opens like Open with another number of append lanes, for
// benchmarks that compare them.
var OpenLanes = open

// UserQueries are the statements that look up one user's conversations,
// for the test of their plans.
var UserQueries = map[string]string{"Heads": headsQuery, "Conversations": conversationsQuery}

// ContactsQuery is what a login or a revocation reads to find whom to tell
// devices_changed, for the test of its plan.
const ContactsQuery = contactsQuery

// CountRows counts the rows of a table, for the conformance suite's checks
// of what a store writes (storetest's rowCounter). Only the tables it asks
// about are allowed.
func (s *Store) CountRows(ctx context.Context, table string) (int, error) {
	switch table {
	case "messages", "message_ciphertexts", "shared_epochs", "shared_recipients":
	default:
		return 0, fmt.Errorf("CountRows: no table %q", table)
	}
	var n int
	err := s.pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{table}.Sanitize()).Scan(&n)
	return n, err
}
