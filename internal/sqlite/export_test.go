package sqlite

import (
	"context"
	"fmt"
)

// OpenSynchronous opens like Open with another PRAGMA synchronous on the
// writer, for benchmarks that compare them.
var OpenSynchronous = open

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
	err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n)
	return n, err
}
