package postgres_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/postgres"
	"github.com/switchboard-chat/switchboard/internal/storetest"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func open(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func migrate(t testing.TB, s *postgres.Store) {
	t.Helper()
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) switchboard.Store {
		s := open(t, testenv.Postgres(t))
		migrate(t, s)
		return s
	})
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()

	t.Run("running it again changes nothing and keeps the data", func(t *testing.T) {
		s := open(t, testenv.Postgres(t))
		migrate(t, s)
		if err := s.CreateUser(ctx, &switchboard.User{ID: "u-1", Username: "alice", PasswordHash: "h"}); err != nil {
			t.Fatal(err)
		}
		migrate(t, s)
		if _, err := s.UserByName(ctx, "alice"); err != nil {
			t.Fatalf("UserByName after migrating again: %v", err)
		}
	})

	t.Run("nodes migrating one database at once all succeed", func(t *testing.T) {
		url := testenv.Postgres(t)
		const nodes = 4
		stores := make([]*postgres.Store, nodes)
		for i := range stores {
			stores[i] = open(t, url)
		}
		errs := make([]error, nodes)
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Go(func() { errs[i] = s.Migrate(ctx) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("node %d: Migrate: %v", i, err)
			}
		}
		if err := stores[0].CreateUser(ctx, &switchboard.User{ID: "u-1", Username: "alice"}); err != nil {
			t.Fatalf("CreateUser after concurrent migrations: %v", err)
		}
	})
}

// BenchmarkAppendMessage measures sends on the test server, which runs
// with fsync off unless SWITCHBOARD_TEST_PG_FSYNC=1 (internal/testenv):
//
//	go test -run '^$' -bench 'AppendMessage$' -benchtime 5s ./internal/postgres
//	SWITCHBOARD_TEST_PG_FSYNC=1 go test -run '^$' -bench 'AppendMessage$' -benchtime 5s ./internal/postgres
func BenchmarkAppendMessage(b *testing.B) {
	storetest.BenchmarkAppendMessage(b, func(b *testing.B) switchboard.Store {
		s := open(b, testenv.Postgres(b))
		migrate(b, s)
		return s
	})
}

// BenchmarkAppendMessageLanes compares numbers of append lanes, each
// committing its own batches (Open uses a constant, lanes).
func BenchmarkAppendMessageLanes(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			storetest.BenchmarkAppendMessage(b, func(b *testing.B) switchboard.Store {
				s, err := postgres.OpenLanes(context.Background(), testenv.Postgres(b), n)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				migrate(b, s)
				return s
			})
		})
	}
}

// BenchmarkAppendShared measures shared-ciphertext sends in one group of
// 500 devices and in 64 groups of 20, with fsync on as in production:
//
//	SWITCHBOARD_TEST_PG_FSYNC=1 go test -run '^$' -bench AppendShared -benchtime 5s ./internal/postgres
func BenchmarkAppendShared(b *testing.B) {
	storetest.BenchmarkAppendShared(b, func(b *testing.B) switchboard.Store {
		s := open(b, testenv.Postgres(b))
		migrate(b, s)
		return s
	})
}
