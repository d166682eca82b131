package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/switchboard-chat/switchboard/client"
)

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
