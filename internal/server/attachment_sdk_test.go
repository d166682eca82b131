package server_test

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/e2e"
	"github.com/switchboard-chat/switchboard/internal/media"
)

// TestSDKSendsAnEncryptedPhoto is an attachment end to end through a real
// node: the SDK shrinks the photo and encrypts it on Alice's device,
// uploads the ciphertext, sends the key inside the message's end-to-end
// ciphertext over the socket; Bob's device receives the message, downloads
// and opens the photo; Eve, not a member, gets not_found; and what the
// node stored holds neither the photo nor its key.
func TestSDKSendsAnEncryptedPhoto(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, backends[0].open(t), withMedia(dir, media.Config{}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := client.New(n.url)
	if err != nil {
		t.Fatal(err)
	}
	login := func(name string) (*client.Session, *e2e.Identity) {
		if _, err := c.CreateAccount(ctx, name, "password-"+name); err != nil {
			t.Fatal(err)
		}
		id, _ := e2e.GenerateIdentity(e2e.KEMX25519)
		s, err := c.LoginIdentity(ctx, name, "password-"+name, "phone", id)
		if err != nil {
			t.Fatal(err)
		}
		return s, id
	}
	alice, aliceID := login("alice")
	bob, bobID := login("bob")
	eve, _ := login("eve")
	conv, err := alice.CreateConversation(ctx, client.KindDirect, []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	photo := realPhoto(t)
	att, err := alice.UploadAttachment(ctx, photo, client.AttachmentOptions{Name: "seeding.jpg", MaxSide: 320})
	if err != nil {
		t.Fatal(err)
	}
	if att.Type != "image/jpeg" || att.Width != 320 || att.Height != 180 || att.Size >= int64(len(photo)) {
		t.Fatalf("uploaded %+v: want a 320x180 JPEG smaller than the %d-byte photo", att, len(photo))
	}

	aliceSec, err := client.NewSecure(alice, connect(t, alice, client.ConnOptions{}), aliceID, client.SecureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := aliceSec.SendContent(ctx, conv, client.Content{Text: "look", Attachments: []client.Attachment{att}}); err != nil {
		t.Fatal(err)
	}
	bobSec, err := client.NewSecure(bob, connect(t, bob, client.ConnOptions{}), bobID, client.SecureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := bobSec.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	content, err := client.ParseContent(got.Plaintext)
	if err != nil || content.Text != "look" || len(content.Attachments) != 1 {
		t.Fatalf("content %+v, %v", content, err)
	}
	img, err := bob.DownloadAttachment(ctx, content.Attachments[0])
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := jpeg.DecodeConfig(bytes.NewReader(img)); err != nil || cfg.Width != 320 || cfg.Height != 180 {
		t.Fatalf("bob's image: %+v, %v", cfg, err)
	}
	if _, err := eve.DownloadAttachment(ctx, att); !isCode(err, client.CodeNotFound) {
		t.Fatalf("eve downloads it: %v", err)
	}

	stored, err := os.ReadFile(filepath.Join(dir, "blobs", att.ID[:2], att.ID[2:4], att.ID+".bin"))
	if err != nil {
		t.Fatalf("the node's copy: %v", err)
	}
	if bytes.Contains(stored, img[:64]) || bytes.Contains(stored, att.Key) || bytes.Contains(stored, []byte("seeding")) {
		t.Fatal("the node's copy holds the image, its key or its name")
	}
	if err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, att.Key) {
			t.Errorf("%s holds the attachment's key", p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func isCode(err error, code string) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Code == code
}
