package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestAppendReadUsesIndexes checks the plan of the append's read of a
// conversation's head and a client id (headAndLookupQuery): one probe of
// the conversations' primary key and one of the messages' unique (sender
// device, client id) index, never a scan, which would make every send
// read the whole messages table.
func TestAppendReadUsesIndexes(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "sb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	rows, err := s.w.QueryContext(ctx, "EXPLAIN QUERY PLAN "+headAndLookupQuery, "c", "d", "m")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	text := strings.Join(plan, "\n")
	for _, table := range []string{"c", "m"} {
		if strings.Contains(text, "SCAN "+table) || !strings.Contains(text, "SEARCH "+table) {
			t.Errorf("the read scans %s instead of searching an index:\n%s", table, text)
		}
	}
}
