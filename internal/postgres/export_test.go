package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// OpenLanes opens like Open with another number of append lanes, for
// benchmarks that compare them.
func OpenLanes(ctx context.Context, url string, lanes int) (*Store, error) {
	return open(ctx, url, lanes, Config{})
}

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

// PoolQueries returns the statements run so far per pool (primary,
// replica-0, ...), as switchboard_db_queries_total counts them.
func (s *Store) PoolQueries() map[string]int64 {
	m := map[string]int64{"primary": s.queries.n.Load()}
	if s.replicas != nil {
		for _, r := range s.replicas.list {
			m[r.name] = r.queries.n.Load()
		}
	}
	return m
}

// ReplicaHealthy reports whether replica i passed its last check.
func (s *Store) ReplicaHealthy(i int) bool { return s.replicas.list[i].healthy.Load() }

// RecordsEnd is recordsEnd, for its test.
var RecordsEnd = recordsEnd
