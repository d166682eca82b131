package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestPostgres(t *testing.T) {
	ctx := context.Background()
	connect := func(t *testing.T, url string) *pgx.Conn {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		t.Cleanup(func() { conn.Close(ctx) })
		return conn
	}

	t.Run("each call gets its own empty database", func(t *testing.T) {
		a, b := connect(t, Postgres(t)), connect(t, Postgres(t))
		if _, err := a.Exec(ctx, "CREATE TABLE t (x int)"); err != nil {
			t.Fatal(err)
		}
		var names [2]string
		for i, conn := range []*pgx.Conn{a, b} {
			if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&names[i]); err != nil {
				t.Fatal(err)
			}
		}
		if names[0] == names[1] {
			t.Fatalf("both calls returned database %q", names[0])
		}
		var tables int
		err := b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables)
		if err != nil {
			t.Fatal(err)
		}
		if tables != 0 {
			t.Fatalf("second database has %d tables, want 0", tables)
		}
	})

	t.Run("the private server fsyncs only when SWITCHBOARD_TEST_PG_FSYNC=1", func(t *testing.T) {
		if os.Getenv(envPostgresURL) != "" {
			t.Skipf("%s names a server this package did not configure", envPostgresURL)
		}
		conn := connect(t, Postgres(t))
		var fsync, syncCommit string
		err := conn.QueryRow(ctx, "SELECT current_setting('fsync'), current_setting('synchronous_commit')").Scan(&fsync, &syncCommit)
		if err != nil {
			t.Fatal(err)
		}
		want := "off"
		if durablePostgres() {
			want = "on"
		}
		if fsync != want || syncCommit != want {
			t.Fatalf("fsync = %s, synchronous_commit = %s; want both %s", fsync, syncCommit, want)
		}
	})

	t.Run("the server listens on loopback only and is not the machine's own", func(t *testing.T) {
		conn := connect(t, Postgres(t))
		var addr, port string
		err := conn.QueryRow(ctx, "SELECT current_setting('listen_addresses'), current_setting('port')").Scan(&addr, &port)
		if err != nil {
			t.Fatal(err)
		}
		if os.Getenv(envPostgresURL) == "" && (addr != "127.0.0.1" || port == "5432") {
			t.Fatalf("private server listens on %s:%s", addr, port)
		}
	})
}

func TestFreePort(t *testing.T) {
	t.Run("the port can be bound on loopback", func(t *testing.T) {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", FreePort()))
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
	})
}

func TestWithDatabase(t *testing.T) {
	tests := []struct {
		name, in, db, want string
	}{
		{"a URL with a database gets the new one", "postgres://u:p@h:1/postgres?sslmode=disable", "x", "postgres://u:p@h:1/x?sslmode=disable"},
		{"a URL without a database gets one", "postgres://h:1", "x", "postgres://h:1/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := withDatabase(tt.in, tt.db); got != tt.want {
				t.Fatalf("withDatabase(%q, %q) = %q, want %q", tt.in, tt.db, got, tt.want)
			}
		})
	}
}
