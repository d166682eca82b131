package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/deploy/nginx"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// socketsPerNode reads each node's switchboard_ws_connections.
func socketsPerNode(t *testing.T, nodes []*Main) []float64 {
	t.Helper()
	out := make([]float64, len(nodes))
	for i, n := range nodes {
		out[i] = testenv.Metric(t, n.AdminURL(), "switchboard_ws_connections")
	}
	return out
}

// TestSeveralNGINXSameNode runs two NGINX instances with the same
// upstream list in front of three nodes (one PostgreSQL, one Redis).
// Each device connects once through each instance. A node keeps one
// socket per device: a second socket of a device on the same node
// replaces the first, which is closed with 4002 (replaced); a second
// socket on another node would leave the first open. So for every device
// the first socket must end with 4002, and the socket gauges must show
// the node that held the first socket holding the second, no other node
// gaining one. A message then sent to the device reaches the socket that
// remains.
func TestSeveralNGINXSameNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	nodes := startNodes(t, ctx, 3, testenv.Postgres(t), testenv.Redis(t).URL())
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.URL())
	}
	ngA, ngB := testenv.NGINX(t, urls), testenv.NGINX(t, urls)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx A error log:\n%s\nnginx B error log:\n%s", ngA.ErrorLog(), ngB.ErrorLog())
		}
	})
	viaB, err := client.New(ngB.URL())
	if err != nil {
		t.Fatal(err)
	}
	sender := testenv.SignupLogin(ctx, t, ngA.URL(), "sender")

	// settle waits until the gauges read want.
	settle := func(want []float64) []float64 {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := socketsPerNode(t, nodes)
			if slices.Equal(got, want) {
				return got
			}
			if time.Now().After(deadline) {
				t.Fatalf("sockets per node %v, want %v", got, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	perNode := map[int]int{}
	for k := 0; k < 6 || len(perNode) < 2; k++ {
		if k == 30 {
			t.Fatalf("30 devices all went to one node: %v", perNode)
		}
		user := testenv.SignupLogin(ctx, t, ngA.URL(), fmt.Sprint("user", k))
		conv, err := sender.CreateConversation(ctx, "direct", []string{user.UserID}, "")
		if err != nil {
			t.Fatal(err)
		}

		// Through A: the gauge that moves names the device's node.
		before := socketsPerNode(t, nodes)
		first := connectSynced(ctx, t, user)
		node, deadline := -1, time.Now().Add(10*time.Second)
		for node < 0 {
			now := socketsPerNode(t, nodes)
			for i := range now {
				if now[i] == before[i]+1 {
					node = i
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("device %d: no node's socket gauge moved (%v -> %v)", k, before, now)
			}
			time.Sleep(20 * time.Millisecond)
		}
		withFirst := settle(socketsPerNode(t, nodes))

		// Through B: the same device, the same node.
		second := connectSynced(ctx, t, viaB.Resume(*user))
		select {
		case <-first.Done():
			var ce *client.CloseError
			if !errors.As(first.Err(), &ce) || ce.Code != client.CloseReplaced {
				t.Fatalf("device %d: the socket through A ended with %v, want close %d (replaced)", k, first.Err(), client.CloseReplaced)
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("device %d: the socket through A (node %d) is still open 15 s after the one through B: "+
				"they are on different nodes (sockets per node %v)", k, node, socketsPerNode(t, nodes))
		}
		settle(withFirst) // the second socket took the first one's place on its node
		perNode[node]++

		// A message to the device reaches the socket that remains.
		body := fmt.Sprint("hello ", k)
		sent, err := sender.SendHTTP(ctx, client.SendRequest{Conversation: conv, Ciphertexts: map[string][]byte{user.DeviceID: []byte(body)}})
		if err != nil {
			t.Fatal(err)
		}
		for got := false; !got; {
			select {
			case m := <-second.Messages():
				if m.Event == nil {
					if m.Seq != sent.Seq || string(m.Ciphertext) != body {
						t.Fatalf("device %d got %d %q, want %d %q", k, m.Seq, m.Ciphertext, sent.Seq, body)
					}
					got = true
				}
			case <-ctx.Done():
				t.Fatalf("device %d: the message did not reach the socket through B", k)
			}
		}
	}
	t.Logf("devices per node: %v", perNode)
}

// TestNGINXReloadAddsNode: two nodes behind NGINX, devices connected
// through it with the SDK and receiving a steady stream of messages (sent
// over HTTP through the same NGINX); a third node starts and NGINX is
// reloaded with three upstreams. The old workers close every socket they
// hold at worker_shutdown_timeout (2 s here instead of the deployed 10 s,
// to keep the test short); the SDK reconnects, through the new workers, to
// the node the device now hashes to, and syncs. Every device gets every
// message sent to it exactly once, in order, and the new node holds the
// sockets of the devices that moved.
func TestNGINXReloadAddsNode(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	db, redis := testenv.Postgres(t), testenv.Redis(t).URL()
	// One sender sends to every device: above the per-device send rate.
	flags := []string{"--send-rate", "1000", "--send-burst", "1000"}
	nodes := startNodes(t, ctx, 2, db, redis, flags...)
	upstreams := func() []string {
		var u []string
		for _, n := range nodes {
			u = append(u, n.URL())
		}
		return u
	}
	ng := testenv.NGINXWith(t, nginx.Private{Upstreams: upstreams(), ShutdownTimeout: 2 * time.Second})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nginx error log:\n%s", ng.ErrorLog())
		}
	})
	sender := testenv.SignupLogin(ctx, t, ng.URL(), "sender")

	type message struct {
		seq  int64
		body string // the send's ID
	}
	type device struct {
		s    *client.Session
		conv string
		conn *client.Conn

		mu    sync.Mutex
		sent  []message // acknowledged sends to it, in the order sent
		got   []message // what its application received, in order
		syncs int       // synced frames: the first connect's and every reconnect's
	}
	const devices = 16
	devs := make([]*device, devices)
	var readers sync.WaitGroup
	t.Cleanup(readers.Wait) // after the sockets' Close (cleanups run last first)
	for i := range devs {
		d := &device{s: testenv.SignupLogin(ctx, t, ng.URL(), fmt.Sprint("user", i))}
		var err error
		if d.conv, err = sender.CreateConversation(ctx, "direct", []string{d.s.UserID}, ""); err != nil {
			t.Fatal(err)
		}
		if d.conn, err = client.Connect(ctx, d.s, client.ConnOptions{AutoAck: true,
			MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.conn.Close() })
		readers.Go(func() {
			msgs, synced := d.conn.Messages(), d.conn.Synced()
			for msgs != nil {
				select {
				case m, ok := <-msgs:
					if !ok {
						msgs = nil
						continue
					}
					if m.Event != nil {
						continue
					}
					d.mu.Lock()
					d.got = append(d.got, message{m.Seq, string(m.Ciphertext)})
					d.mu.Unlock()
				case _, ok := <-synced:
					if !ok {
						synced = nil
						continue
					}
					d.mu.Lock()
					d.syncs++
					d.mu.Unlock()
				}
			}
		})
		devs[i] = d
	}
	waitFor := func(what string, within time.Duration, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(within); !cond(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v", what, within)
			}
		}
	}
	synced := func(n int) int { // devices synced at least n times
		c := 0
		for _, d := range devs {
			d.mu.Lock()
			if d.syncs >= n {
				c++
			}
			d.mu.Unlock()
		}
		return c
	}
	waitFor("every device synced", 20*time.Second, func() bool { return synced(1) == devices })

	// The stream: round after round, one message to every device. A send
	// that fails (NGINX closing a keepalive connection at the reload) is
	// sent again with the same ID: the server stores it once.
	stop := make(chan struct{})
	var senders sync.WaitGroup
	var sendErr error
	senders.Go(func() {
		for round := 0; ; round++ {
			select {
			case <-stop:
				return
			case <-time.After(40 * time.Millisecond):
			}
			for i, d := range devs {
				id := fmt.Sprintf("r%d-d%d", round, i)
				var sent client.Sent
				var err error
				for try := 0; try < 20; try++ {
					sent, err = sender.SendHTTP(ctx, client.SendRequest{ID: id, Conversation: d.conv,
						Ciphertexts: map[string][]byte{d.s.DeviceID: []byte(id)}})
					if err == nil {
						break
					}
					time.Sleep(50 * time.Millisecond)
				}
				if err != nil {
					sendErr = fmt.Errorf("send %s: %w", id, err)
					return
				}
				d.mu.Lock()
				d.sent = append(d.sent, message{sent.Seq, id})
				d.mu.Unlock()
			}
		}
	})
	stopSending := sync.OnceFunc(func() { close(stop); senders.Wait() })
	defer stopSending()

	time.Sleep(1500 * time.Millisecond)
	nodes = append(nodes, startNodes(t, ctx, 1, db, redis, flags...)...)
	ng.Reload(t, upstreams())
	reloaded := time.Now()

	// Every device reconnects (every socket was on an old worker), and
	// the new node gets those it now owns.
	deadline := reloaded.Add(30 * time.Second)
	for {
		reconnected := synced(2)
		per := socketsPerNode(t, nodes)
		if reconnected == devices && per[0]+per[1]+per[2] == devices {
			t.Logf("%d devices reconnected %v after the reload; sockets per node %v", devices,
				time.Since(reloaded).Round(100*time.Millisecond), per)
			if per[2] == 0 {
				t.Fatalf("no device went to the added node: sockets per node %v", per)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the reload %d of %d devices reconnected; sockets per node %v", reconnected, devices, per)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(time.Second) // traffic on the new layout
	stopSending()
	if sendErr != nil {
		t.Fatal(sendErr)
	}

	// Every message, once, in order: what each device's application got
	// is what was sent to it, seq and body.
	deadline = time.Now().Add(20 * time.Second)
	for _, d := range devs {
		for {
			d.mu.Lock()
			done := len(d.got) >= len(d.sent)
			d.mu.Unlock()
			if done || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	total := 0
	for i, d := range devs {
		d.mu.Lock()
		total += len(d.sent)
		if !slices.Equal(d.got, d.sent) {
			t.Errorf("device %d received %v, want the %d messages sent to it, once each and in order: %v", i, d.got, len(d.sent), d.sent)
		}
		d.mu.Unlock()
	}
	t.Logf("%d messages to %d devices, each received once and in order", total, devices)
}
