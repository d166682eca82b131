package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestPresenceTypingReceiptsAcrossNodes runs two node processes on one
// PostgreSQL and one Redis behind the shipped NGINX config, with alice's
// device on one node and bob's on the other (NGINX picks by device id; the
// test logs bob in until one lands there), and checks through the SDK:
// presence, no presence of a stranger, typing (starts past one a second
// dropped, an unrefreshed start stopped by the server), receipts (reads
// coalesced to one frame a second) with the opt-out both ways, and that
// kill -9 of bob's node takes him offline for alice within 30 s.
func TestPresenceTypingReceiptsAcrossNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db, redis := testenv.Postgres(t), testenv.Redis(t)
	bin := testenv.Build(t, "github.com/switchboard-chat/switchboard/cmd/switchboard")
	var nodes []*testenv.Node
	for range 2 {
		nodes = append(nodes, testenv.StartNode(t, bin, "--db", db, "--redis", redis.URL(),
			"--argon2-memory", "64", "--argon2-time", "1"))
	}
	proxy := testenv.NGINX(t, []string{nodes[0].Addr, nodes[1].Addr})
	c, err := client.New(proxy.URL())
	if err != nil {
		t.Fatal(err)
	}
	keys := client.DeviceInfo{Name: "phone", KEM: "x25519", PublicKey: bytes.Repeat([]byte{9}, 32), SigningKey: make([]byte, 32)}
	signup := func(name string) *client.Session { return testenv.SignupLogin(ctx, t, proxy.URL(), name) }
	// onNode connects s through NGINX and returns the Conn and its node's
	// index, read from the nodes' open-socket gauges (want: the sockets
	// open on the nodes before, plus this one).
	open := []int{0, 0}
	onNode := func(s *client.Session, opts client.ConnOptions) (*client.Conn, int) {
		conn, err := client.Connect(ctx, s, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		<-conn.Synced()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			now := []int{socketsOpen(t, nodes[0]), socketsOpen(t, nodes[1])}
			for i := range now {
				if now[i] == open[i]+1 && now[1-i] == open[1-i] {
					open = now
					return conn, i
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("the new socket is on no node (open before %v)", open)
		return nil, 0
	}

	alice, carol := signup("alice"), signup("carol")
	aliceConn, aliceNode := onNode(alice, client.ConnOptions{AutoAck: true})
	bob := signup("bob")
	conv, err := alice.CreateConversation(ctx, "direct", []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	bobOpts := client.ConnOptions{}
	var bobConn *client.Conn
	for tries := 0; ; tries++ {
		conn, node := onNode(bob, bobOpts)
		if node != aliceNode {
			bobConn = conn
			break
		}
		conn.Close()
		open[node]--
		if tries == 10 {
			t.Fatal("NGINX put 10 devices of bob on alice's node")
		}
		if bob, err = c.Login(ctx, "bob", "password-bob", keys); err != nil {
			t.Fatal(err)
		}
	}
	next := func(conn *client.Conn, what string, ok func(client.Notice) bool) client.Notice {
		t.Helper()
		timeout := time.After(60 * time.Second)
		for {
			select {
			case ev := <-conn.Notices():
				t.Logf("event %T %+v", ev, ev)
				if ok(ev) {
					return ev
				}
			case <-timeout:
				p, err := alice.UserPresence(ctx, bob.UserID)
				t.Fatalf("no %s in 60 s (bob's presence now %+v %v; sockets open %d, %d)", what, p, err, socketsOpen(t, nodes[0]), socketsOpen(t, nodes[1]))
			}
		}
	}
	presenceOf := func(user string, online bool) func(client.Notice) bool {
		return func(ev client.Notice) bool {
			p, ok := ev.(*client.PresenceEvent)
			if ok && p.UserID == carol.UserID {
				t.Fatalf("alice got the presence of carol, a stranger: %+v", p)
			}
			return ok && p.UserID == user && p.Online == online
		}
	}

	t.Run("alice watching from her node sees bob online on the other; carol, a stranger, is ignored", func(t *testing.T) {
		if err := aliceConn.SubscribePresence(ctx, []string{carol.UserID, bob.UserID}); err != nil {
			t.Fatal(err)
		}
		next(aliceConn, "bob online", presenceOf(bob.UserID, true))
		if _, err := alice.UserPresence(ctx, carol.UserID); err == nil {
			t.Fatal("GET presence of a stranger answered")
		}
	})
	t.Run("typing crosses nodes", func(t *testing.T) {
		if err := bobConn.Typing(ctx, conv, true); err != nil {
			t.Fatal(err)
		}
		next(aliceConn, "bob typing", func(ev client.Notice) bool {
			ty, ok := ev.(*client.TypingEvent)
			return ok && ty.UserID == bob.UserID && ty.Typing && ty.Conversation == conv
		})
	})
	t.Run("typing starts past one a second are dropped, and the server stops an unrefreshed start after 6 s", func(t *testing.T) {
		time.Sleep(1100 * time.Millisecond) // out of the last start's second
		for range 3 {
			if err := bobConn.Typing(ctx, conv, true); err != nil {
				t.Fatal(err)
			}
		}
		started := time.Now()
		starts := 0
		next(aliceConn, "bob's typing stopped by the server", func(ev client.Notice) bool {
			ty, ok := ev.(*client.TypingEvent)
			if !ok || ty.UserID != bob.UserID {
				return false
			}
			if ty.Typing {
				starts++
				return false
			}
			return true
		})
		if starts != 1 {
			t.Fatalf("alice got %d starts for three in a moment", starts)
		}
		if took := time.Since(started); took < 5*time.Second {
			t.Fatalf("stopped %v after the start: want the 6 s timeout (bob sent no stop)", took)
		}
	})
	receipt := func(what string, ok func(r *client.ReceiptEvent) bool) {
		t.Helper()
		next(aliceConn, what, func(ev client.Notice) bool {
			r, is := ev.(*client.ReceiptEvent)
			return is && r.UserID == bob.UserID && ok(r)
		})
	}
	send := func(id string) int64 {
		t.Helper()
		sent, err := aliceConn.Send(ctx, client.SendRequest{ID: id, Conversation: conv, Ciphertext: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		m := <-bobConn.Messages()
		if err := bobConn.Ack(ctx, conv, m.Seq); err != nil {
			t.Fatal(err)
		}
		return sent.Seq
	}
	t.Run("receipts cross nodes: delivered, then read", func(t *testing.T) {
		seq := send("m1")
		receipt("delivered", func(r *client.ReceiptEvent) bool { return r.Delivered == seq })
		if err := bobConn.MarkRead(ctx, conv, seq); err != nil {
			t.Fatal(err)
		}
		receipt("read", func(r *client.ReceiptEvent) bool { return r.Read == seq })
	})
	t.Run("reads across nodes are coalesced to at most one receipt a second", func(t *testing.T) {
		var last int64
		for _, id := range []string{"c1", "c2", "c3"} {
			last = send(id)
		}
		receipt("delivered", func(r *client.ReceiptEvent) bool { return r.Delivered == last })
		for seq := last - 2; seq <= last; seq++ {
			if err := bobConn.MarkRead(ctx, conv, seq); err != nil {
				t.Fatal(err)
			}
		}
		frames := 0
		receipt("read", func(r *client.ReceiptEvent) bool {
			frames++
			return r.Read == last
		})
		if frames > 2 { // three reads within a moment: one window, or two at a boundary
			t.Fatalf("alice got %d receipts of bob for three reads in a moment", frames)
		}
	})
	t.Run("with receipts off, bob's reads stay hidden across nodes", func(t *testing.T) {
		if err := bob.SetReadReceipts(ctx, false); err != nil {
			t.Fatal(err)
		}
		seq := send("m2")
		if err := bobConn.MarkRead(ctx, conv, seq); err != nil {
			t.Fatal(err)
		}
		receipt("delivered", func(r *client.ReceiptEvent) bool {
			if r.Read == seq {
				t.Fatalf("alice saw bob's hidden read: %+v", r)
			}
			return r.Delivered == seq
		})
		rs, err := alice.Receipts(ctx, conv)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.UserID == bob.UserID && r.Read >= seq {
				t.Fatalf("GET receipts shows bob's hidden read: %+v", r)
			}
		}
		// As in Signal, bob, who hides his reads, sees nobody's: alice's read
		// (made on her node, read by bob's) shows as 0 to him, not to her.
		if err := aliceConn.MarkRead(ctx, conv, seq); err != nil {
			t.Fatal(err)
		}
		readOf := func(s *client.Session, user string) int64 {
			rs, err := s.Receipts(ctx, conv)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if r.UserID == user {
					return r.Read
				}
			}
			return -1
		}
		for deadline := time.Now().Add(30 * time.Second); readOf(alice, alice.UserID) != seq; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("alice's read never reached the store")
			}
		}
		if got := readOf(bob, alice.UserID); got != 0 {
			t.Fatalf("bob, with receipts off, sees alice's read %d", got)
		}
	})
	t.Run("bob's last socket closing takes him offline for alice", func(t *testing.T) {
		bobConn.Close()
		next(aliceConn, "bob offline", presenceOf(bob.UserID, false))
	})
	t.Run("kill -9 of bob's node takes him offline for alice within 30 s", func(t *testing.T) {
		// A raw socket straight to bob's node: the SDK would reconnect
		// through NGINX to the node left, and bob would stay online.
		dialRaw(ctx, t, nodes[1-aliceNode].URL(), bob.Token)
		next(aliceConn, "bob online", presenceOf(bob.UserID, true))
		nodes[1-aliceNode].Kill()
		killed := time.Now()
		ev := next(aliceConn, "bob offline", presenceOf(bob.UserID, false)).(*client.PresenceEvent)
		took := time.Since(killed)
		t.Logf("offline %v after the kill, last seen %v before it", took.Round(time.Millisecond), killed.Sub(ev.LastSeen).Round(time.Millisecond))
		if took > 30*time.Second {
			t.Fatalf("offline only %v after the kill", took)
		}
		if ev.LastSeen.IsZero() || ev.LastSeen.After(killed) {
			t.Fatalf("last_seen %v: want the last heartbeat before the kill (%v)", ev.LastSeen, killed)
		}
	})
}

// socketsOpen reads switchboard_ws_connections from a node's /metrics.
func socketsOpen(t *testing.T, n *testenv.Node) int {
	return int(testenv.Metric(t, n.AdminURL(), "switchboard_ws_connections"))
}
