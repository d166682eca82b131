package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/redisbus"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestInterestFanOut runs three nodes behind NGINX, on one Redis and on a
// Redis Cluster: a conversation created while its members' sockets are
// open on two nodes gets every message, sent from both sides at once,
// exactly once and in seq order on each side; the third node, whose only
// socket is in another conversation, receives none of its messages (its
// switchboard_fanout_received_total counts only its own conversation's).
func TestInterestFanOut(t *testing.T) { eachRedis(t, interestFanOut) }

func interestFanOut(t *testing.T, busArgs []string) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	db := testenv.Postgres(t)
	var urls, admins []string
	for range 3 {
		m := NewMain()
		m.Stderr = &bytes.Buffer{}
		args := append([]string{"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--db", db,
			"--argon2-memory", "64", "--argon2-time", "1"}, busArgs...)
		if err := m.ParseFlags(args, func(string) string { return "" }); err != nil {
			t.Fatal(err)
		}
		if err := m.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		t.Cleanup(func() { m.Close() })
		urls, admins = append(urls, m.URL()), append(admins, m.AdminURL())
	}
	ng := testenv.NGINX(t, urls)

	// Sockets through NGINX land where the device's hash puts them: each
	// is placed by watching which node's socket gauge moves.
	type user struct {
		s    *client.Session
		conn *client.Conn
		node int
	}
	open := func() []float64 {
		out := make([]float64, len(admins))
		for i, a := range admins {
			out[i] = testenv.Metric(t, a, "switchboard_ws_connections")
		}
		return out
	}
	byNode := make(map[int][]*user)
	for k := 0; len(byNode) < 3; k++ {
		if k == 40 {
			t.Fatalf("40 devices through NGINX did not cover 3 nodes: %v", byNode)
		}
		name := fmt.Sprint("user", k)
		u := &user{s: testenv.SignupLogin(ctx, t, ng.URL(), name)}
		before := open()
		u.conn = connectSynced(ctx, t, u.s)
		deadline := time.Now().Add(20 * time.Second)
		for u.node = -1; u.node < 0; {
			now := open()
			for i := range now {
				if now[i] > before[i] {
					u.node = i
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("no node's socket gauge moved")
			}
			time.Sleep(20 * time.Millisecond)
		}
		byNode[u.node] = append(byNode[u.node], u)
	}
	alice, bob, carol := byNode[0][0], byNode[1][0], byNode[2][0]
	for _, us := range byNode { // one socket per node: close the others
		for _, u := range us[1:] {
			u.conn.Close()
		}
	}
	// Created while the sockets are open: the Joined event subscribes
	// nodes 0 and 1, and alice's first sends race it.
	conv, err := alice.s.CreateConversation(ctx, "group", []string{bob.s.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	sent := make(map[*user][]int64)
	var mu sync.Mutex
	send := func(from, to *user, i int) error {
		r, err := from.conn.Send(ctx, client.SendRequest{ID: fmt.Sprint(from.s.UserID, i), Conversation: conv,
			Ciphertexts: map[string][]byte{to.s.DeviceID: []byte(fmt.Sprint(from.s.UserID, " ", i))}})
		if err == nil {
			mu.Lock()
			sent[from] = append(sent[from], r.Seq)
			mu.Unlock()
		}
		return err
	}
	const first = 5
	for i := range first {
		if err := send(alice, bob, 1000+i); err != nil {
			t.Fatal(err)
		}
	}
	// carol's conversation is with a user with no socket: only node 2
	// holds it.
	dave := testenv.SignupLogin(ctx, t, ng.URL(), "dave")
	other, err := carol.s.CreateConversation(ctx, "direct", []string{dave.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	// Every node holds its conversation before the counted phase.
	deadline := time.Now().Add(20 * time.Second)
	for i, a := range admins {
		for testenv.Metric(t, a, "switchboard_fanout_conversations") < 1 {
			if time.Now().After(deadline) {
				t.Fatalf("node %d subscribed to no conversation", i)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	base := make([]float64, 3)
	for i, a := range admins {
		base[i] = testenv.Metric(t, a, "switchboard_fanout_received_total")
	}

	const each = 40
	var wg sync.WaitGroup
	for _, pair := range [][2]*user{{alice, bob}, {bob, alice}} {
		from, to := pair[0], pair[1]
		wg.Go(func() {
			for i := range each {
				if err := send(from, to, i); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		})
	}
	const carols = 3
	for i := range carols {
		if _, err := carol.conn.Send(ctx, client.SendRequest{ID: fmt.Sprint("c", i), Conversation: other,
			Ciphertexts: map[string][]byte{dave.DeviceID: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, pair := range [][2]*user{{alice, bob}, {bob, alice}} {
		to, from := pair[0], pair[1]
		want := sent[from]
		var got []int64
		for len(got) < len(want) {
			select {
			case m := <-to.conn.Messages():
				got = append(got, m.Seq)
			case <-ctx.Done():
				t.Fatalf("node %d's socket received seqs %v, want %v", to.node, got, want)
			}
		}
		if !slices.IsSorted(got) || !slices.Equal(got, want) {
			t.Errorf("node %d's socket received seqs %v, want %v exactly once, in order", to.node, got, want)
		}
		select {
		case m := <-to.conn.Messages():
			t.Errorf("node %d's socket received one more message: %+v", to.node, m)
		case <-time.After(300 * time.Millisecond):
		}
	}
	// Node 2 received carol's conversation only; nodes 0 and 1 received
	// every message of theirs (each node gets its own publishes back).
	deadline = time.Now().Add(20 * time.Second)
	for {
		var got []float64
		for i, a := range admins {
			got = append(got, testenv.Metric(t, a, "switchboard_fanout_received_total")-base[i])
		}
		if got[0] >= 2*each && got[1] >= 2*each && got[2] == carols {
			t.Logf("messages received per node in the counted phase: %v", got)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("messages received per node %v, want nodes 0 and 1 >= %d and node 2 exactly %d (its own conversation's)", got, 2*each, carols)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func connectSynced(ctx context.Context, t *testing.T, s *client.Session) *client.Conn {
	t.Helper()
	c, err := client.Connect(ctx, s, client.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	select {
	case <-c.Synced():
	case <-ctx.Done():
		t.Fatal("no synced")
	}
	return c
}

// TestShardFailover runs two nodes on a Redis Cluster and kills the
// primary of the shard a conversation's channel is on while messages flow
// in a dozen conversations: its replica takes over, the nodes subscribe
// again, and every message reaches the other node's device exactly once,
// in order (those the dead shard lost are read from the store).
func TestShardFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	db, cluster := testenv.Postgres(t), testenv.NewRedisCluster(t)
	var urls []string
	for range 2 {
		m := NewMain()
		m.Stderr = &bytes.Buffer{}
		if err := m.ParseFlags([]string{"--addr", "127.0.0.1:0", "--admin-addr", "", "--db", db,
			"--redis-cluster", strings.Join(cluster.Addrs(), ","), "--argon2-memory", "64", "--argon2-time", "1",
			"--send-rate-conversation", "0"}, func(string) string { return "" }); err != nil {
			t.Fatal(err)
		}
		if err := m.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		t.Cleanup(func() { m.Close() })
		urls = append(urls, m.URL())
	}
	alice, bob := testenv.SignupLogin(ctx, t, urls[0], "alice"), testenv.SignupLogin(ctx, t, urls[1], "bob")
	aliceWS, bobWS := connectSynced(ctx, t, alice), connectSynced(ctx, t, bob)
	var convs []string
	for range 12 {
		c, err := alice.CreateConversation(ctx, "group", []string{bob.UserID}, "")
		if err != nil {
			t.Fatal(err)
		}
		convs = append(convs, c)
	}
	shards := make(map[string]int)
	for _, c := range convs {
		shards[cluster.PrimaryOf(redisbus.ClusterSlot(chat.TopicPrefix+c))]++
	}
	t.Logf("conversations per shard: %v", shards)
	if len(shards) < 2 {
		t.Fatalf("12 conversations on %d shard(s), want them spread over the cluster's shards: %v", len(shards), shards)
	}

	sent := make(map[string][]int64)
	send := func(rounds int) {
		for r := range rounds {
			for _, c := range convs {
				res, err := aliceWS.Send(ctx, client.SendRequest{ID: fmt.Sprint(c, len(sent[c]), r), Conversation: c,
					Ciphertexts: map[string][]byte{bob.DeviceID: []byte("x")}})
				if err != nil {
					t.Fatalf("send: %v", err)
				}
				sent[c] = append(sent[c], res.Seq)
			}
		}
	}
	send(3)
	slot := redisbus.ClusterSlot(chat.TopicPrefix + convs[0])
	killed := cluster.KillPrimaryOf(slot)
	send(5) // while the shard fails over
	cluster.WaitFailover(t, slot, killed)
	t.Logf("killed the primary %s; its replica took over", killed)
	send(3)

	got := make(map[string][]int64)
	total := 0
	for _, s := range sent {
		total += len(s)
	}
	for n := 0; n < total; n++ {
		select {
		case m := <-bobWS.Messages():
			got[m.Conversation] = append(got[m.Conversation], m.Seq)
		case <-ctx.Done():
			t.Fatalf("received %d of %d messages: %v, sent %v", n, total, got, sent)
		}
	}
	for _, c := range convs {
		if !slices.Equal(got[c], sent[c]) {
			t.Errorf("conversation %s: received %v, want %v exactly once, in order", c, got[c], sent[c])
		}
	}
}
