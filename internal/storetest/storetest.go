// Package storetest is the conformance suite of switchboard.Store: one set
// of tests that every implementation runs, so that the SQLite and the
// PostgreSQL stores cannot drift apart in what they promise.
//
// A store's test calls Run with a function that opens a fresh, empty,
// migrated store:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) switchboard.Store { ... })
//	}
package storetest

import (
	"context"
	"testing"

	"github.com/switchboard-chat/switchboard"
)

// storeTest is one contract check on a fresh store.
type storeTest struct {
	name string
	fn   func(t *testing.T, s switchboard.Store)
}

// Run runs the suite. open must return a new empty store for each call and
// close it when t ends (t.Cleanup); it is called from parallel subtests.
func Run(t *testing.T, open func(t *testing.T) switchboard.Store) {
	groups := []struct {
		name  string
		tests []storeTest
	}{
		{"users", userTests()},
		{"devices", deviceTests()},
		{"sessions", sessionTests()},
		{"conversations", conversationTests()},
		{"messages", messageTests()},
		{"idempotency", idempotencyTests()},
		{"concurrency", concurrencyTests()},
		{"batching", batchingTests()},
		{"cursors", cursorTests()},
		{"retention", retentionTests()},
		{"shared", sharedTests()},
		{"members", memberTests()},
		{"receipts", receiptTests()},
		{"ping", []storeTest{{"Ping succeeds on an open store", func(t *testing.T, s switchboard.Store) {
			if err := s.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}}}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tt := range g.tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					tt.fn(t, open(t))
				})
			}
		})
	}
}

// ctx is the context of every call: the suite checks contracts, not cancellation.
var ctx = context.Background()
