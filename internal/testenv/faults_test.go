package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestFaultControls checks the controls the fault suite (internal/faults)
// relies on: Redis paused, resumed, killed and started on its port, and
// PostgreSQL restarted with its data.
func TestFaultControls(t *testing.T) {
	t.Run("a paused Redis answers nothing until resumed", func(t *testing.T) {
		r := Redis(t)
		r.Pause()
		if err := pingRedis(r.Addr); err == nil {
			t.Fatal("a paused Redis answered PING")
		}
		r.Resume()
		if err := pingRedis(r.Addr); err != nil {
			t.Fatalf("after Resume: %v", err)
		}
	})
	t.Run("a killed Redis is gone and starts again on its port", func(t *testing.T) {
		r := Redis(t)
		r.Kill()
		if err := pingRedis(r.Addr); err == nil {
			t.Fatal("a killed Redis answered PING")
		}
		r.Start(t)
		if err := pingRedis(r.Addr); err != nil {
			t.Fatalf("after Start: %v", err)
		}
	})
	t.Run("PostgreSQL restarts with its data", func(t *testing.T) {
		if _, err := postgresAdminURL(); err != nil || pgServer == nil {
			t.Skip("no private PostgreSQL server (SWITCHBOARD_TEST_POSTGRES names one)")
		}
		ctx := context.Background()
		url := Postgres(t)
		exec := func(sql string) error {
			c, err := pgx.Connect(ctx, url)
			if err != nil {
				return err
			}
			defer c.Close(ctx)
			_, err = c.Exec(ctx, sql)
			return err
		}
		if err := exec("CREATE TABLE kept (x int); INSERT INTO kept VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		RestartPostgres(t, 100*time.Millisecond)
		if err := exec("SELECT x FROM kept"); err != nil {
			t.Fatalf("after the restart: %v", err)
		}
	})
}
