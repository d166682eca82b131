package client_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log"

	"github.com/switchboard-chat/switchboard/client"
)

// Example logs in as a new device, connects, sends a message to a direct
// conversation and prints what arrives. Encryption is left out: seal the
// plaintext for each recipient device as docs/crypto.md says.
func Example() {
	ctx := context.Background()
	c, err := client.New("http://localhost:8080")
	if err != nil {
		log.Fatal(err)
	}

	// A device has an X25519 key to receive with and an Ed25519 key to sign.
	kem, _ := ecdh.X25519().GenerateKey(rand.Reader)
	sign, _, _ := ed25519.GenerateKey(rand.Reader)
	s, err := c.Login(ctx, "alice", "correct horse battery", client.DeviceInfo{
		Name: "laptop", KEM: client.KEMX25519,
		PublicKey: kem.PublicKey().Bytes(), SigningKey: sign,
	})
	if err != nil {
		log.Fatal(err)
	}
	cnv, err := s.CreateConversation(ctx, client.KindDirect, []string{"usr_bob"}, "")
	if err != nil {
		log.Fatal(err)
	}

	conn, err := client.Connect(ctx, s, client.ConnOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()

	// Encrypt for every device of every member except this one.
	cts := map[string][]byte{}
	for _, user := range []string{"usr_bob", s.UserID} {
		devices, err := s.Devices(ctx, user)
		if err != nil {
			log.Fatal(err)
		}
		for _, d := range devices {
			if d.ID != s.DeviceID {
				cts[d.ID] = []byte("ciphertext for " + d.ID)
			}
		}
	}
	sent, err := conn.Send(ctx, client.SendRequest{Conversation: cnv, Ciphertexts: cts})
	var e *client.Error
	switch {
	case errors.As(err, &e) && e.Code == client.CodeDevicesMismatch:
		log.Fatalf("refresh devices: missing %v, extra %v", e.Missing, e.Extra)
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println("stored as seq", sent.Seq)

	// Each message arrives once, in order per conversation, across
	// reconnects. Ack once it is stored so it is not replayed next time.
	for m := range conn.Messages() {
		fmt.Printf("%s #%d from %s: %d bytes\n", m.Conversation, m.Seq, m.SenderDeviceID, len(m.Ciphertext))
		if err := conn.Ack(ctx, m.Conversation, m.Seq); err != nil {
			break
		}
	}
	// Messages is closed: the Conn ended for good.
	var ce *client.CloseError
	if errors.As(conn.Err(), &ce) && ce.Code == client.CloseDeviceRevoked {
		fmt.Println("this device was revoked; log in again")
	}
}
