package client_test

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/calls"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/internal/server"
	"github.com/switchboard-chat/switchboard/internal/sqlite"
)

// The runnable examples (members, presence, typing, receipts, calls) run
// against a real node on a loopback port, set up as cmd/switchboard does
// with the in-process bus: SQLite, in-memory presence and call state. So
// their output is what a server answers.

// exampleNode starts a node and returns its URL and a stop function.
func exampleNode() (string, func()) {
	dir, err := os.MkdirTemp("", "sb-example")
	if err != nil {
		log.Fatal(err)
	}
	st, err := sqlite.Open(filepath.Join(dir, "sb.db"))
	if err != nil {
		log.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		log.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	bus := &inmem.Bus{}
	svc := chat.New(st, bus, chat.Config{Argon2: chat.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}, Logger: quiet,
		Presence: inmem.NewPresence(chat.PresenceTTL, nil).Node("local")})
	kc := calls.New(svc, &calls.MemoryKV{}, bus, calls.Config{Logger: quiet})
	srv := server.New(svc, server.Config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Logger: quiet, Calls: kc})
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	return "http://" + srv.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		kc.Close()
		bus.Close()
		st.Close()
		os.RemoveAll(dir)
	}
}

// exampleUser signs a user up on url and logs one device in.
func exampleUser(url, name string) *client.Session {
	ctx := context.Background()
	c, err := client.New(url)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.CreateAccount(ctx, name, "password-"+name); err != nil {
		log.Fatal(err)
	}
	s, err := c.Login(ctx, name, "password-"+name, client.DeviceInfo{Name: "phone", KEM: client.KEMX25519,
		PublicKey: bytes.Repeat([]byte{9}, 32), SigningKey: make([]byte, 32)})
	if err != nil {
		log.Fatal(err)
	}
	return s
}

// exampleConn connects s's device and waits for its backlog (synced): from
// then on the node relays live notices and calls to it.
func exampleConn(s *client.Session) *client.Conn {
	conn, err := client.Connect(context.Background(), s, client.ConnOptions{AutoAck: true})
	if err != nil {
		log.Fatal(err)
	}
	<-conn.Synced()
	return conn
}

// exampleOnline connects s's device and waits until the node has its user
// online (it claims a user a moment after their first socket opens).
func exampleOnline(s *client.Session) *client.Conn {
	conn := exampleConn(s)
	if err := conn.SubscribePresence(context.Background(), []string{s.UserID}); err != nil {
		log.Fatal(err)
	}
	for ev := range conn.Notices() {
		if p, ok := ev.(*client.PresenceEvent); ok && p.Online {
			break
		}
	}
	return conn
}
