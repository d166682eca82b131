package postgres_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/postgres"
	"github.com/switchboard-chat/switchboard/internal/storetest"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func open(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func migrate(t *testing.T, s *postgres.Store) {
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
