package client_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/switchboard-chat/switchboard/client"
)

// connect stands for the login and Connect of Example.
func connect() (*client.Session, *client.Conn) {
	c, err := client.New("http://localhost:8080")
	if err != nil {
		log.Fatal(err)
	}
	s := c.Resume(client.Session{UserID: "usr_alice", DeviceID: "dev_phone", Token: "TOKEN"})
	conn, err := client.Connect(context.Background(), s, client.ConnOptions{})
	if err != nil {
		log.Fatal(err)
	}
	return s, conn
}

// ExampleConn_SubscribePresence watches two contacts and prints each change;
// the current state of each comes first.
func ExampleConn_SubscribePresence() {
	ctx := context.Background()
	_, conn := connect()
	defer conn.Close()
	if err := conn.SubscribePresence(ctx, []string{"usr_bob", "usr_carol"}); err != nil {
		log.Fatal(err)
	}
	for ev := range conn.Notices() {
		if p, ok := ev.(*client.PresenceEvent); ok {
			if p.Online {
				fmt.Println(p.UserID, "is online")
			} else {
				fmt.Println(p.UserID, "was last seen", p.LastSeen.Format(time.Kitchen))
			}
		}
	}
}

// ExampleConn_Typing says "typing…" while the user types, refreshing it
// every few seconds (the server stops a start after 6 s), and shows the
// others' typing.
func ExampleConn_Typing() {
	ctx := context.Background()
	_, conn := connect()
	defer conn.Close()
	const cnv = "cnv_team"
	if err := conn.Typing(ctx, cnv, true); err != nil {
		log.Fatal(err)
	}
	// ... the user sends or clears the draft:
	if err := conn.Typing(ctx, cnv, false); err != nil {
		log.Fatal(err)
	}
	for ev := range conn.Notices() {
		if t, ok := ev.(*client.TypingEvent); ok && t.Typing {
			fmt.Println(t.UserID, "is typing in", t.Conversation)
		}
	}
}

// ExampleConn_MarkRead marks what the user saw as read and prints the ticks
// of the others; Receipts reads them all at once, and SetReadReceipts
// turns them off (then the user sees nobody's either).
func ExampleConn_MarkRead() {
	ctx := context.Background()
	s, conn := connect()
	defer conn.Close()
	for m := range conn.Messages() {
		// ... shown on screen:
		if err := conn.MarkRead(ctx, m.Conversation, m.Seq); err != nil {
			log.Fatal(err)
		}
		break
	}
	rs, err := s.Receipts(ctx, "cnv_team")
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range rs {
		fmt.Printf("%s: delivered up to %d, read up to %d\n", r.UserID, r.Delivered, r.Read)
	}
	for ev := range conn.Notices() {
		if r, ok := ev.(*client.ReceiptEvent); ok {
			fmt.Printf("%s read %s up to %d\n", r.UserID, r.Conversation, r.Read)
		}
	}
	if err := s.SetReadReceipts(ctx, false); err != nil {
		log.Fatal(err)
	}
}

// ExampleSession_UserPresence asks once whether a contact is online.
func ExampleSession_UserPresence() {
	s, _ := connect()
	p, err := s.UserPresence(context.Background(), "usr_bob")
	if err != nil {
		log.Fatal(err) // not_found for a user who shares no conversation
	}
	fmt.Println(p.Online)
}
