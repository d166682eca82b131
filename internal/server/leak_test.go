package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/e2e"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// recordingBus keeps a copy of everything published, as a Redis MONITOR would.
type recordingBus struct {
	sb.Bus
	mu  sync.Mutex
	log bytes.Buffer
}

func (b *recordingBus) Publish(ctx context.Context, topic string, data []byte) error {
	b.mu.Lock()
	fmt.Fprintf(&b.log, "PUBLISH %s %s\n", topic, data)
	b.mu.Unlock()
	return b.Bus.Publish(ctx, topic, data)
}

// encodings are the forms in which marker could show up in a dump or a log:
// as is, hex (bytea dumps) and base64 at each of the three alignments.
func encodings(marker string) []string {
	out := []string{marker, hex.EncodeToString([]byte(marker))}
	for pad := range 3 {
		enc := base64.StdEncoding.EncodeToString(append(bytes.Repeat([]byte{0}, pad), marker...))
		// Drop the characters that depend on the neighbouring bytes.
		out = append(out, enc[(pad*4+2)/3+1:len(enc)-4])
	}
	return out
}

func TestNoPlaintextLeaves(t *testing.T) {
	dbURL := testenv.Postgres(t)
	bus := &recordingBus{Bus: &inmem.Bus{}}
	n := startNodeOn(t, openPostgres(t, dbURL), bus, slog.LevelDebug)

	ctx := context.Background()
	c, _ := client.New(n.url)
	type member struct {
		id   *e2e.Identity
		sess *client.Session
		conn *client.Conn
		sec  *client.Secure
	}
	login := func(user, name, kem string) *member {
		id, err := e2e.GenerateIdentity(kem)
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.LoginIdentity(ctx, user, "password-"+user, name, id)
		if err != nil {
			t.Fatal(err)
		}
		conn := connect(t, s, client.ConnOptions{})
		sec, err := client.NewSecure(s, conn, id, client.SecureOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return &member{id, s, conn, sec}
	}
	for _, u := range []string{"alice", "bob", "mallory"} {
		if _, err := c.CreateAccount(ctx, u, "password-"+u); err != nil {
			t.Fatal(err)
		}
	}
	alice := login("alice", "phone", e2e.KEMX25519)
	bobPhone := login("bob", "phone", e2e.KEMMLKEM768X25519)
	bobLaptop := login("bob", "laptop", e2e.KEMX25519)
	mallory := login("mallory", "phone", e2e.KEMX25519)
	conv, err := alice.sess.CreateConversation(ctx, client.KindGroup, []string{bobPhone.sess.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}

	e2eMarker := "MARKER-e2e-" + chat.NewID("m")
	assistedMarker := "MARKER-assisted-" + chat.NewID("m")
	if _, err := alice.sec.Send(ctx, conv, []byte(e2eMarker)); err != nil {
		t.Fatalf("end-to-end send: %v", err)
	}
	if _, err := alice.conn.Send(ctx, client.SendRequest{Conversation: conv, Plaintext: []byte(assistedMarker)}); err != nil {
		t.Fatalf("server-assisted send: %v", err)
	}

	t.Run("every recipient device decrypts both with its own key", func(t *testing.T) {
		for _, m := range []*member{bobPhone, bobLaptop} {
			for i, want := range []string{e2eMarker, assistedMarker} {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				got, err := m.sec.Receive(rctx)
				cancel()
				if err != nil || string(got.Plaintext) != want || got.Assisted != (i == 1) {
					t.Fatalf("%s message %d: %q assisted=%v err=%v; want %q", m.sess.DeviceID, i, got.Plaintext, got.Assisted, err, want)
				}
			}
		}
	})

	t.Run("no other device can open them", func(t *testing.T) {
		hist, err := bobPhone.sess.Messages(ctx, conv, 0, 10)
		if err != nil || len(hist) != 2 {
			t.Fatalf("history %v %v", hist, err)
		}
		for _, m := range hist {
			for _, other := range []*member{bobLaptop, mallory, alice} {
				if _, err := e2e.Open(other.id, alice.id.SigningKey(), e2e.Context{Conversation: conv, SenderUser: alice.sess.UserID,
					SenderDevice: alice.sess.DeviceID, RecipientDevice: other.sess.DeviceID}, m.Ciphertext); err == nil {
					t.Fatalf("%s opened bob's phone's envelope %d", other.sess.DeviceID, m.Seq)
				}
				if _, err := e2e.OpenAssisted(other.id, e2e.Context{Conversation: conv, SenderUser: alice.sess.UserID,
					SenderDevice: alice.sess.DeviceID, RecipientDevice: other.sess.DeviceID}, m.Ciphertext); err == nil {
					t.Fatalf("%s opened bob's phone's assisted envelope %d", other.sess.DeviceID, m.Seq)
				}
			}
		}
		if _, err := mallory.sess.Messages(ctx, conv, 0, 10); err == nil {
			t.Fatal("a non-member read the conversation's history")
		}
	})

	t.Run("the marker is nowhere in the database, the bus or the logs", func(t *testing.T) {
		dump := pgDump(t, dbURL)
		if !strings.Contains(dump, "message_ciphertexts") || len(dump) < 1000 {
			t.Fatalf("the dump looks empty (%d bytes)", len(dump))
		}
		bus.mu.Lock()
		published := bus.log.String()
		bus.mu.Unlock()
		if !strings.Contains(published, "PUBLISH conv.") {
			t.Fatal("the bus recorded no message: the recording is broken")
		}
		for name, text := range map[string]string{"database dump": dump, "bus": published, "node logs": n.logText()} {
			for _, marker := range []string{e2eMarker, assistedMarker} {
				for _, enc := range encodings(marker) {
					if strings.Contains(text, enc) {
						t.Errorf("%s holds the marker %q as %q", name, marker, enc)
					}
				}
			}
		}
	})
}

func TestEncodingsFindTheMarker(t *testing.T) {
	marker := "MARKER-xyz-123456"
	for pad := range 3 {
		text := base64.StdEncoding.EncodeToString(append([]byte("prefix"[:pad+1]), marker+"suffix"...))
		found := false
		for _, enc := range encodings(marker) {
			found = found || strings.Contains(text, enc)
		}
		if !found {
			t.Fatalf("the marker base64-encoded after %d bytes was not found", pad+1)
		}
	}
}

// pgDump returns a plain SQL dump of the database, data included.
func pgDump(t *testing.T, url string) string {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_dump")
	if len(bins) == 0 {
		t.Fatal("pg_dump not found (install postgresql)")
	}
	var out, stderr bytes.Buffer
	cmd := exec.Command(bins[len(bins)-1], "--no-owner", "--inserts", url)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		errors.As(err, &ee)
		t.Fatalf("pg_dump: %v: %s", err, stderr.String())
	}
	return out.String()
}
