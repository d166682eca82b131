package e2e_test

import (
	"fmt"
	"log"

	"github.com/switchboard-chat/switchboard/e2e"
)

// Example seals a message from Alice's laptop to Bob's phone and opens it
// there. In an application the ids come from the server (the client
// message id is the send's "id"), and Bob's KEM and public key and Alice's
// signing key from the device directory; client.Secure does all of it.
func Example() {
	alice, err := e2e.GenerateIdentity(e2e.KEMX25519)
	if err != nil {
		log.Fatal(err)
	}
	bob, err := e2e.GenerateIdentity(e2e.KEMMLKEM768X25519)
	if err != nil {
		log.Fatal(err)
	}
	c := e2e.Context{
		Conversation: "cnv_1", SenderUser: "usr_alice", SenderDevice: "dev_laptop",
		ClientID: "msg-0001", RecipientDevice: "dev_phone",
	}
	env, err := e2e.Seal(alice, bob.KEM(), bob.PublicKey(), c, []byte("lunch?"))
	if err != nil {
		log.Fatal(err)
	}

	// On Bob's phone: the message frame names the conversation and the
	// sender; the client message id travels in the envelope.
	h, _ := e2e.Inspect(env)
	got, err := e2e.Open(bob, alice.SigningKey(), e2e.Context{
		Conversation: "cnv_1", SenderUser: "usr_alice", SenderDevice: "dev_laptop",
		RecipientDevice: "dev_phone",
	}, env)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s (id %s, server-sealed: %v)\n", got, h.ClientID, h.Assisted)
	// Output: lunch? (id msg-0001, server-sealed: false)
}

// ExampleIdentity_MarshalBinary saves a device's identity and loads it
// again.
func ExampleIdentity_MarshalBinary() {
	id, _ := e2e.GenerateIdentity(e2e.KEMX25519)
	saved, _ := id.MarshalBinary() // secret: store it like a password
	loaded, err := e2e.ParseIdentity(saved)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(loaded.KEM(), len(loaded.PublicKey()), len(loaded.SigningKey()))
	// Output: x25519 32 32
}
