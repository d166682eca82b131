package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/e2e"
)

// ExampleSecure sets up a device with its own keys, sends an end-to-end
// encrypted message and reads what arrives.
func ExampleSecure() {
	ctx := context.Background()
	c, err := client.New("http://localhost:8080")
	if err != nil {
		log.Fatal(err)
	}

	// Once per device: generate the keys and keep them (they are secret).
	id, err := e2e.GenerateIdentity(e2e.KEMX25519)
	if err != nil {
		log.Fatal(err)
	}
	saved, _ := id.MarshalBinary()
	if err := os.WriteFile("device.key", saved, 0o600); err != nil {
		log.Fatal(err)
	}

	s, err := c.LoginIdentity(ctx, "alice", "correct horse battery", "laptop", id)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := client.Connect(ctx, s, client.ConnOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	sec, err := client.NewSecure(s, conn, id, client.SecureOptions{})
	if err != nil {
		log.Fatal(err)
	}

	cnv, err := s.CreateConversation(ctx, client.KindDirect, []string{"usr_bob"}, "")
	if err != nil {
		log.Fatal(err)
	}
	// Sealed for each of Bob's devices and each other device of Alice's.
	if _, err := sec.Send(ctx, cnv, []byte("lunch?")); err != nil {
		log.Fatal(err)
	}

	for {
		m, err := sec.Receive(ctx)
		var de *client.DecryptError
		switch {
		case errors.As(err, &de):
			log.Printf("dropping %s/%d: %v", m.Conversation, m.Seq, err)
		case err != nil:
			log.Fatal(err) // the Conn ended: see Conn.Err
		case m.Assisted:
			fmt.Printf("%s (not end-to-end encrypted): %s\n", m.SenderUserID, m.Plaintext)
		default:
			fmt.Printf("%s: %s\n", m.SenderUserID, m.Plaintext)
		}
		_ = conn.Ack(ctx, m.Conversation, m.Seq)
	}
}
