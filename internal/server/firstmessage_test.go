package server_test

import (
	"context"
	"testing"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/e2e"
)

// A new user's first message goes to a friend who has never logged in (no
// device yet), then to the same friend right after their first login, when
// the sender's device directory is stale. Both must just work: the first is
// stored with no recipient ciphertext; the second is refused with
// devices_mismatch naming the new device, and the SDK refreshes and retries.
func TestFirstMessageToANewFriend(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			n := startNode(t, b.open(t))
			ctx := context.Background()
			c, err := client.New(n.url)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.CreateAccount(ctx, "alice", "password-alice"); err != nil {
				t.Fatal(err)
			}
			bobUser, err := c.CreateAccount(ctx, "bob", "password-bob")
			if err != nil {
				t.Fatal(err)
			}
			aliceID, _ := e2e.GenerateIdentity(e2e.KEMX25519)
			alice, err := c.LoginIdentity(ctx, "alice", "password-alice", "phone", aliceID)
			if err != nil {
				t.Fatal(err)
			}
			conv, err := alice.CreateConversation(ctx, "direct", []string{bobUser}, "")
			if err != nil {
				t.Fatal(err)
			}
			x, err := client.NewSecure(alice, nil, aliceID, client.SecureOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sent, err := x.Send(ctx, conv, []byte("hi bob, before you ever logged in"))
			if err != nil {
				t.Fatalf("first message to a friend with no device yet: %v", err)
			}
			if sent.Seq != 1 {
				t.Fatalf("first message got seq %d, want 1", sent.Seq)
			}

			// A raw send with no ciphertexts now misses bob's new device:
			// devices_mismatch with both arrays, extra empty.
			bobID, _ := e2e.GenerateIdentity(e2e.KEMX25519)
			bob, err := c.LoginIdentity(ctx, "bob", "password-bob", "laptop", bobID)
			if err != nil {
				t.Fatal(err)
			}
			d := device{user: alice.UserID, id: alice.DeviceID, token: alice.Token}
			st, body := n.call(t, "POST", "/v1/conversations/"+conv+"/messages", d.token,
				map[string]any{"id": "raw-1", "ciphertexts": map[string]any{}})
			missing, okM := body["missing"].([]any)
			extra, okE := body["extra"].([]any)
			if st != 409 || body["code"] != "devices_mismatch" || !okM || !okE || len(missing) != 1 || missing[0] != bob.DeviceID || len(extra) != 0 {
				t.Fatalf("send missing bob's device: %d %v; want 409 devices_mismatch with missing [%s] and extra []", st, body, bob.DeviceID)
			}

			// The SDK's cached directory still says bob has no device: the
			// server's devices_mismatch makes it refresh and retry.
			sent, err = x.Send(ctx, conv, []byte("and now that you have"))
			if err != nil {
				t.Fatalf("second message after bob's first login: %v", err)
			}
			if sent.Seq != 2 {
				t.Fatalf("second message got seq %d, want 2", sent.Seq)
			}
			bc := connect(t, bob, client.ConnOptions{})
			got := receive(t, bc, 1)
			if got[0].Seq != 2 {
				t.Fatalf("bob received seq %d, want 2 (seq 1 had no device of his)", got[0].Seq)
			}
		})
	}
}
