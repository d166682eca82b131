package client_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/internal/server"
	"github.com/switchboard-chat/switchboard/internal/sqlite"
)

// The membership examples run against a real node (SQLite, in-process
// bus) on a loopback port, so their output is what a server answers.

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
	srv := server.New(chat.New(st, bus, chat.Config{Argon2: chat.Argon2Params{Time: 1, MemoryKiB: 64, Threads: 1}, Logger: quiet}),
		server.Config{Addr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Logger: quiet})
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	return "http://" + srv.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
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

// An admin adds members to a group: one member_added event each, and the
// seq of the last. Users already members are skipped.
func ExampleSession_AddMembers() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()
	alice, bob, carol := exampleUser(url, "alice"), exampleUser(url, "bob"), exampleUser(url, "carol")
	group, _ := alice.CreateConversation(ctx, client.KindGroup, nil, "climbing")

	seq, err := alice.AddMembers(ctx, group, bob.UserID, carol.UserID)
	fmt.Println("last event:", seq, err)
	seq, err = alice.AddMembers(ctx, group, bob.UserID) // already a member
	fmt.Println("again:", seq, err)
	_, err = bob.AddMembers(ctx, group, alice.UserID)
	fmt.Println("bob is no admin:", err.(*client.Error).Code)
	// Output:
	// last event: 2 <nil>
	// again: 2 <nil>
	// bob is no admin: not_admin
}

// An admin removes a member; the removed user's history stops at the
// removal.
func ExampleSession_RemoveMember() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()
	alice, bob := exampleUser(url, "alice"), exampleUser(url, "bob")
	group, _ := alice.CreateConversation(ctx, client.KindGroup, []string{bob.UserID}, "")

	seq, err := alice.RemoveMember(ctx, group, bob.UserID)
	fmt.Println("removed at", seq, err)
	history, _ := bob.Messages(ctx, group, 0, 10)
	for _, m := range history {
		fmt.Println(m.Seq, m.Event.Kind, m.Event.UserID == bob.UserID)
	}
	_, _, err = bob.MessagesPage(ctx, group, seq, 10)
	fmt.Println("later pages:", err.(*client.Error).Code)
	// Output:
	// removed at 1 <nil>
	// 1 member_removed true
	// later pages: not_member
}

// Any member may leave; when the last admin leaves, another member becomes
// admin.
func ExampleSession_Leave() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()
	alice, bob := exampleUser(url, "alice"), exampleUser(url, "bob")
	group, _ := alice.CreateConversation(ctx, client.KindGroup, []string{bob.UserID}, "")

	seq, err := alice.Leave(ctx, group)
	fmt.Println("left at", seq, err)
	convs, _ := bob.Conversations(ctx)
	fmt.Println("bob is admin:", convs[0].Admins[0] == bob.UserID)
	// Output:
	// left at 1 <nil>
	// bob is admin: true
}

// An admin makes another member an admin.
func ExampleSession_SetRole() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()
	alice, bob := exampleUser(url, "alice"), exampleUser(url, "bob")
	group, _ := alice.CreateConversation(ctx, client.KindGroup, []string{bob.UserID}, "")

	seq, err := alice.SetRole(ctx, group, bob.UserID, client.RoleAdmin)
	fmt.Println("role_changed at", seq, err)
	convs, _ := alice.Conversations(ctx)
	fmt.Println("admins:", len(convs[0].Admins))
	// Output:
	// role_changed at 1 <nil>
	// admins: 2
}

// Events arrive on the Conn with the messages, in seq order: a Message
// whose Event is set and whose Ciphertext is nil.
func ExampleEvent() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()
	alice, bob := exampleUser(url, "alice"), exampleUser(url, "bob")
	group, _ := alice.CreateConversation(ctx, client.KindGroup, nil, "")
	conn, err := client.Connect(ctx, bob, client.ConnOptions{AutoAck: true})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	<-conn.Synced()

	alice.AddMembers(ctx, group, bob.UserID)
	alice.SetRole(ctx, group, bob.UserID, client.RoleAdmin)
	for range 2 {
		m := <-conn.Messages()
		if e := m.Event; e != nil {
			fmt.Printf("%d %s of bob: %v role: %q\n", m.Seq, e.Kind, e.UserID == bob.UserID, e.Role)
		}
	}
	// Output:
	// 1 member_added of bob: true role: ""
	// 2 role_changed of bob: true role: "admin"
}
