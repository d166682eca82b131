package client_test

import (
	"context"
	"fmt"
	"log"

	"github.com/switchboard-chat/switchboard/client"
)

// ExampleConn_SubscribePresence watches contacts and prints each change;
// the current state of each comes first. Users who share no conversation
// with the watcher (carol here) are ignored.
func ExampleConn_SubscribePresence() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()
	alice, bob, carol := exampleUser(url, "alice"), exampleUser(url, "bob"), exampleUser(url, "carol")
	alice.CreateConversation(ctx, client.KindDirect, []string{bob.UserID}, "")
	names := map[string]string{bob.UserID: "bob", carol.UserID: "carol"}

	conn := exampleConn(alice)
	defer conn.Close()
	if err := conn.SubscribePresence(ctx, []string{carol.UserID, bob.UserID}); err != nil {
		log.Fatal(err)
	}
	next := func() {
		for ev := range conn.Notices() {
			if p, ok := ev.(*client.PresenceEvent); ok {
				if p.Online {
					fmt.Println(names[p.UserID], "is online")
				} else {
					fmt.Println(names[p.UserID], "is offline; ever seen:", !p.LastSeen.IsZero())
				}
				return
			}
		}
	}
	next()                      // bob's current state
	bobConn := exampleConn(bob) // bob opens the app...
	next()
	bobConn.Close() // ... and closes it: offline once the 2 s grace is over
	next()
	// Output:
	// bob is offline; ever seen: false
	// bob is online
	// bob is offline; ever seen: true
}

// ExampleConn_Typing says "typing…" while the user types and shows the
// others' typing. While typing, call Typing(true) again every few seconds:
// the server stops a start after 6 s.
func ExampleConn_Typing() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()
	alice, bob := exampleUser(url, "alice"), exampleUser(url, "bob")
	cnv, _ := alice.CreateConversation(ctx, client.KindDirect, []string{bob.UserID}, "")
	aliceConn, bobConn := exampleConn(alice), exampleConn(bob)
	defer aliceConn.Close()
	defer bobConn.Close()

	// bob types, then sends or clears the draft:
	if err := bobConn.Typing(ctx, cnv, true); err != nil {
		log.Fatal(err)
	}
	if err := bobConn.Typing(ctx, cnv, false); err != nil {
		log.Fatal(err)
	}

	// alice's app shows it:
	for ev := range aliceConn.Notices() {
		if t, ok := ev.(*client.TypingEvent); ok && t.UserID == bob.UserID && t.Conversation == cnv {
			fmt.Println("bob typing:", t.Typing)
			if !t.Typing {
				break
			}
		}
	}
	// Output:
	// bob typing: true
	// bob typing: false
}

// ExampleConn_MarkRead marks what the user saw as read and shows the ticks
// of the others; Receipts reads them all at once, and SetReadReceipts
// turns them off (then the user sees nobody's either).
func ExampleConn_MarkRead() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()
	alice, bob := exampleUser(url, "alice"), exampleUser(url, "bob")
	cnv, _ := alice.CreateConversation(ctx, client.KindDirect, []string{bob.UserID}, "")
	aliceConn, bobConn := exampleConn(alice), exampleConn(bob)
	defer aliceConn.Close()
	defer bobConn.Close()

	sent, err := aliceConn.Send(ctx, client.SendRequest{Conversation: cnv, Ciphertext: []byte("sealed hello")})
	if err != nil {
		log.Fatal(err)
	}

	// bob's app shows the message, then marks it read:
	m := <-bobConn.Messages()
	if err := bobConn.MarkRead(ctx, m.Conversation, m.Seq); err != nil {
		log.Fatal(err)
	}

	// alice's app ticks it. Marks come at most once a second per member,
	// and a mark an event does not carry is 0: keep the highest of each.
	var read int64
	for read < sent.Seq {
		if r, ok := (<-aliceConn.Notices()).(*client.ReceiptEvent); ok && r.UserID == bob.UserID {
			read = max(read, r.Read)
		}
	}
	fmt.Println("bob read up to", read)

	bobRead := func() int64 {
		rs, err := alice.Receipts(ctx, cnv)
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range rs {
			if r.UserID == bob.UserID {
				return r.Read
			}
		}
		return -1
	}
	fmt.Println("receipts: bob read up to", bobRead())
	if err := alice.SetReadReceipts(ctx, false); err != nil {
		log.Fatal(err)
	}
	fmt.Println("receipts off: bob read up to", bobRead())
	// Output:
	// bob read up to 1
	// receipts: bob read up to 1
	// receipts off: bob read up to 0
}

// ExampleSession_UserPresence asks once whether a contact is online (to
// follow the changes, use Conn.SubscribePresence).
func ExampleSession_UserPresence() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()
	alice, bob, carol := exampleUser(url, "alice"), exampleUser(url, "bob"), exampleUser(url, "carol")
	alice.CreateConversation(ctx, client.KindDirect, []string{bob.UserID}, "")

	p, err := alice.UserPresence(ctx, bob.UserID)
	fmt.Println("bob online:", p.Online, err)
	_, err = alice.UserPresence(ctx, carol.UserID) // shares no conversation with alice
	fmt.Println("carol:", err.(*client.Error).Code)

	conn := exampleOnline(bob) // bob opens the app
	defer conn.Close()
	p, err = alice.UserPresence(ctx, bob.UserID)
	fmt.Println("bob online:", p.Online, err)
	// Output:
	// bob online: false <nil>
	// carol: not_found
	// bob online: true <nil>
}
