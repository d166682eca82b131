package client_test

import (
	"context"
	"log"
	"os"

	"github.com/switchboard-chat/switchboard/client"
)

// ExampleSession_UploadAttachment sends a photo end to end: the SDK
// shrinks it to fit 2048 px and strips its metadata on this device,
// encrypts it with a fresh key and uploads only the ciphertext; the key
// travels inside the message, sealed for each recipient device. The
// recipient downloads and opens it.
func ExampleSession_UploadAttachment() {
	ctx := context.Background()
	var (
		s    *client.Session // from Client.LoginIdentity
		sec  *client.Secure  // from NewSecure(s, conn, id, ...)
		conv string          // a conversation id
	)

	photo, err := os.ReadFile("IMG_0042.jpg")
	if err != nil {
		log.Fatal(err)
	}
	att, err := s.UploadAttachment(ctx, photo, client.AttachmentOptions{Name: "harbour.jpg"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := sec.SendContent(ctx, conv, client.Content{Text: "the harbour", Attachments: []client.Attachment{att}}); err != nil {
		log.Fatal(err)
	}

	// On the recipient's device:
	m, err := sec.Receive(ctx)
	if err != nil {
		log.Fatal(err)
	}
	content, err := client.ParseContent(m.Plaintext)
	if err != nil {
		return // a message of another kind
	}
	for _, a := range content.Attachments {
		img, err := s.DownloadAttachment(ctx, a) // checks the digest, then decrypts
		if err != nil {
			log.Fatal(err)
		}
		_ = os.WriteFile(a.Name, img, 0o600)
	}
}
