package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
)

// sdkDevice logs a device in through the SDK.
func sdkDevice(t *testing.T, c *client.Client, username, name string) *client.Session {
	t.Helper()
	keys := newKeys()
	s, err := c.Login(context.Background(), username, "password-"+username, client.DeviceInfo{Name: name, KEM: "x25519",
		PublicKey: keys["public_key"].([]byte), SigningKey: keys["signing_key"].([]byte)})
	if err != nil {
		t.Fatalf("login %s/%s: %v", username, name, err)
	}
	return s
}

func connect(t *testing.T, s *client.Session, opts client.ConnOptions) *client.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := client.Connect(ctx, s, opts)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	select {
	case <-c.Synced():
	case <-ctx.Done():
		t.Fatal("no synced frame")
	}
	return c
}

// receive takes the next n messages, failing after 5 s.
func receive(t *testing.T, c *client.Conn, n int) []client.Message {
	t.Helper()
	var out []client.Message
	for len(out) < n {
		select {
		case m := <-c.Messages():
			out = append(out, m)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d messages, want %d", len(out), n)
		}
	}
	return out
}

// pairwise makes one distinct ciphertext per recipient, so a test can tell who got whose.
func pairwise(tag string, devices ...*client.Session) map[string][]byte {
	m := make(map[string][]byte)
	for _, d := range devices {
		m[d.DeviceID] = []byte(tag + "|" + d.DeviceID)
	}
	return m
}

func TestEndToEnd(t *testing.T) {
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) { testEndToEnd(t, startNode(t, be.open(t))) })
	}
}

func testEndToEnd(t *testing.T, n *node) {
	ctx := context.Background()
	c, err := client.New(n.url)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		if _, err := c.CreateAccount(ctx, u, "password-"+u); err != nil {
			t.Fatal(err)
		}
	}
	phone, laptop := sdkDevice(t, c, "alice", "phone"), sdkDevice(t, c, "alice", "laptop")
	bob := sdkDevice(t, c, "bob", "phone")
	direct, err := phone.CreateConversation(ctx, client.KindDirect, []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	group, err := bob.CreateConversation(ctx, client.KindGroup, []string{phone.UserID}, "team")
	if err != nil {
		t.Fatal(err)
	}

	pc := connect(t, phone, client.ConnOptions{AutoAck: true})
	lc := connect(t, laptop, client.ConnOptions{})
	bc := connect(t, bob, client.ConnOptions{AutoAck: true})

	t.Run("each recipient device gets its own ciphertext, the sender's other device included", func(t *testing.T) {
		sent, err := pc.Send(ctx, client.SendRequest{Conversation: direct, Ciphertexts: pairwise("d1", laptop, bob)})
		if err != nil || sent.Seq != 1 {
			t.Fatalf("send: %+v %v", sent, err)
		}
		for _, rc := range []struct {
			conn *client.Conn
			dev  *client.Session
		}{{lc, laptop}, {bc, bob}} {
			m := receive(t, rc.conn, 1)[0]
			if string(m.Ciphertext) != "d1|"+rc.dev.DeviceID || m.Seq != 1 || m.SenderDeviceID != phone.DeviceID || m.SenderUserID != phone.UserID {
				t.Fatalf("%s got %+v", rc.dev.DeviceID, m)
			}
		}
	})

	t.Run("group messages from both sides arrive once and in order everywhere", func(t *testing.T) {
		for i := range 10 {
			var err error
			if i%2 == 0 {
				_, err = pc.Send(ctx, client.SendRequest{Conversation: group, Ciphertexts: pairwise(fmt.Sprint("g", i), laptop, bob)})
			} else {
				_, err = bc.Send(ctx, client.SendRequest{Conversation: group, Ciphertext: []byte(fmt.Sprint("g", i))})
			}
			if err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
		check := func(name string, got []client.Message, want []int) {
			t.Helper()
			if len(got) != len(want) {
				t.Fatalf("%s got %d messages, want %d", name, len(got), len(want))
			}
			for k, m := range got {
				if m.Conversation != group || m.Seq != int64(want[k]+1) {
					t.Fatalf("%s message %d: %s seq %d, want seq %d", name, k, m.Conversation, m.Seq, want[k]+1)
				}
			}
		}
		check("laptop", receive(t, lc, 10), []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
		check("phone", receive(t, pc, 5), []int{1, 3, 5, 7, 9})
		check("bob", receive(t, bc, 5), []int{0, 2, 4, 6, 8})
	})

	t.Run("a device offline during sends gets exactly what it missed on reconnect", func(t *testing.T) {
		if err := lc.Ack(ctx, group, 10); err != nil {
			t.Fatal(err)
		}
		if err := lc.Ack(ctx, direct, 1); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // acks have no answer; let them land before the socket goes
		lc.Close()
		for i := range 5 {
			if _, err := bc.Send(ctx, client.SendRequest{Conversation: direct, Ciphertexts: pairwise(fmt.Sprint("off", i), phone, laptop)}); err != nil {
				t.Fatal(err)
			}
		}
		receive(t, pc, 5)
		again := connect(t, laptop, client.ConnOptions{})
		got := receive(t, again, 5)
		for i, m := range got {
			if m.Conversation != direct || m.Seq != int64(i+2) || string(m.Ciphertext) != fmt.Sprintf("off%d|%s", i, laptop.DeviceID) {
				t.Fatalf("replayed message %d: %+v", i, m)
			}
		}
		lc = again
	})

	t.Run("an idempotent retry stores and delivers nothing twice", func(t *testing.T) {
		req := client.SendRequest{ID: "retry-1", Conversation: direct, Ciphertexts: pairwise("r", laptop, bob)}
		first, err := pc.Send(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		second, err := pc.Send(ctx, req)
		if err != nil || second.Seq != first.Seq || !second.TS.Equal(first.TS) {
			t.Fatalf("retry answered %+v %v, want the first answer %+v", second, err, first)
		}
		marker, err := pc.Send(ctx, client.SendRequest{Conversation: direct, Ciphertexts: pairwise("marker", laptop, bob)})
		if err != nil || marker.Seq != first.Seq+1 {
			t.Fatalf("marker %+v %v: the retry took a seq", marker, err)
		}
		got := receive(t, bc, 2)
		if got[0].Seq != first.Seq || got[1].Seq != marker.Seq {
			t.Fatalf("bob got seqs %d, %d; want %d then the marker %d", got[0].Seq, got[1].Seq, first.Seq, marker.Seq)
		}
		history, err := bob.Messages(ctx, direct, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []int64
		for _, m := range history {
			seqs = append(seqs, m.Seq)
		}
		// bob's own sends (2-6) are not his to receive.
		if fmt.Sprint(seqs) != fmt.Sprint([]int64{1, first.Seq, marker.Seq}) {
			t.Fatalf("bob's history holds seqs %v, want [1 %d %d]", seqs, first.Seq, marker.Seq)
		}
	})

	t.Run("history over HTTP is what the device receives", func(t *testing.T) {
		h, err := laptop.Messages(ctx, direct, 0, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) != 3 || h[0].Seq != 1 || string(h[0].Ciphertext) != "d1|"+laptop.DeviceID {
			t.Fatalf("laptop history %+v", h)
		}
		mine, err := phone.Messages(ctx, direct, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mine {
			if m.SenderDeviceID == phone.DeviceID {
				t.Fatalf("the phone's history holds its own send %+v", m)
			}
		}
	})
}
