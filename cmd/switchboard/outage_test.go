package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestRedisOutageCatchUp is issue 16's defect 4: messages stored while
// Redis was down reach every online device once Redis is back, with no
// later message to reveal the gap and no reconnect. Two nodes share a
// PostgreSQL and a Redis; devices of three users are online on both, on
// raw sockets that are never reconnected (a close would end the test).
// Redis is killed, messages are sent (and stored: the store is up), Redis
// is started again on its port, and nothing more is sent.
func TestRedisOutageCatchUp(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, redis := testenv.Postgres(t), testenv.Redis(t)
	var urls []string
	for range 2 {
		m := NewMain()
		m.Stderr = &bytes.Buffer{}
		err := m.ParseFlags([]string{"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--db", db, "--redis", redis.URL(),
			"--argon2-memory", "64", "--argon2-time", "1", "--send-rate", "0", "--frame-rate", "0"}, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		t.Cleanup(func() { m.Close() })
		urls = append(urls, m.URL())
	}

	accounts := map[string]*client.Client{}
	login := func(node int, user, device string) *client.Session {
		c, err := client.New(urls[node])
		if err != nil {
			t.Fatal(err)
		}
		if accounts[user] == nil {
			if _, err := c.CreateAccount(ctx, user, "password-"+user); err != nil {
				t.Fatal(err)
			}
			accounts[user] = c
		}
		s, err := c.Login(ctx, user, "password-"+user, client.DeviceInfo{Name: device, KEM: "x25519",
			PublicKey: bytes.Repeat([]byte{9}, 32), SigningKey: make([]byte, 32)})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// alice sends from node 0; her second device and bob are on node 1,
	// carol on node 0 (a node's own publishes also travel through Redis).
	alice := login(0, "alice", "phone")
	alice2, bob, carol := login(1, "alice", "laptop"), login(1, "bob", "phone"), login(0, "carol", "phone")
	direct, err := alice.CreateConversation(ctx, "direct", []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	group, err := alice.CreateConversation(ctx, "group", []string{bob.UserID, carol.UserID}, "three")
	if err != nil {
		t.Fatal(err)
	}
	recipients := map[string][]*client.Session{direct: {alice2, bob}, group: {alice2, bob, carol}}

	sender, err := client.Connect(ctx, alice, client.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sender.Close() })
	sockets := map[*client.Session]*rawSocket{}
	for _, s := range []*client.Session{alice2, bob, carol} {
		node := 1
		if s == carol {
			node = 0
		}
		sockets[s] = dialRaw(ctx, t, urls[node], s.Token)
	}

	want := map[*client.Session]map[string][]int64{} // per device and conversation, the seqs it must get
	send := func(conv string, i int) {
		t.Helper()
		cts := map[string][]byte{}
		for _, r := range recipients[conv] {
			cts[r.DeviceID] = []byte(fmt.Sprint("m", i))
		}
		sent, err := sender.Send(ctx, client.SendRequest{ID: fmt.Sprintf("%s-%d", conv, i), Conversation: conv, Ciphertexts: cts})
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		for _, r := range recipients[conv] {
			if want[r] == nil {
				want[r] = map[string][]int64{}
			}
			want[r][conv] = append(want[r][conv], sent.Seq)
		}
	}
	check := func(what string) {
		t.Helper()
		for s, sock := range sockets {
			if err := sock.await(ctx, want[s]); err != nil {
				t.Fatalf("%s: device %s: %v", what, s.DeviceID, err)
			}
		}
	}

	// Live delivery works, and each node tracks both conversations.
	send(direct, 0)
	send(group, 1)
	check("before the outage")

	redis.Kill()
	for i := 2; i < 42; i++ {
		send([]string{direct, group}[i%2], i)
	}
	redis.Start(t)
	// Nothing more is sent: only the catch-up can deliver them.
	check("after Redis came back")

	// Exactly once: nothing else arrives (a duplicate would follow soon).
	time.Sleep(time.Second)
	for s, sock := range sockets {
		if err := sock.exactly(want[s]); err != nil {
			t.Errorf("device %s: %v", s.DeviceID, err)
		}
	}
}

// rawSocket is a device's WebSocket read without the SDK, so that it is
// never reconnected: the test sees each frame the node wrote, once.
type rawSocket struct {
	mu     sync.Mutex
	got    map[string][]int64 // seqs per conversation, in arrival order
	err    error              // why reading stopped
	notify chan struct{}
}

func dialRaw(ctx context.Context, t *testing.T, url, token string) *rawSocket {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, strings.Replace(url, "http://", "ws://", 1)+"/v1/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadLimit(-1)
	t.Cleanup(func() { ws.CloseNow() })
	r := &rawSocket{got: map[string][]int64{}, notify: make(chan struct{}, 1)}
	synced := make(chan struct{})
	go func() {
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
				r.wake()
				return
			}
			var f struct {
				Type         string `json:"type"`
				Conversation string `json:"conversation"`
				Seq          int64  `json:"seq"`
			}
			if json.Unmarshal(data, &f) != nil {
				continue
			}
			switch f.Type {
			case "synced":
				close(synced)
			case "message":
				r.mu.Lock()
				r.got[f.Conversation] = append(r.got[f.Conversation], f.Seq)
				r.mu.Unlock()
				r.wake()
			}
		}
	}()
	select {
	case <-synced:
	case <-ctx.Done():
		t.Fatal("no synced frame")
	}
	return r
}

func (r *rawSocket) wake() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// await waits until the socket has had at least want's seqs, and checks
// what it has had so far is exactly want's prefix, in order.
func (r *rawSocket) await(ctx context.Context, want map[string][]int64) error {
	for {
		r.mu.Lock()
		done, err := true, r.err
		for conv, seqs := range want {
			if len(r.got[conv]) < len(seqs) {
				done = false
			}
		}
		got := fmt.Sprint(r.got)
		r.mu.Unlock()
		if done {
			return r.exactly(want)
		}
		if err != nil {
			return fmt.Errorf("socket closed (%v) having had %v, want %v", err, got, want)
		}
		select {
		case <-r.notify:
		case <-ctx.Done():
			return fmt.Errorf("had %v, want %v", got, want)
		}
	}
}

// exactly checks the socket has had want's seqs, each once, in order, and
// nothing else, and is still open.
func (r *rawSocket) exactly(want map[string][]int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for conv, seqs := range r.got {
		if !slices.Equal(seqs, want[conv]) {
			return fmt.Errorf("conversation %s: had seqs %v, want %v (each once, in order)", conv, seqs, want[conv])
		}
	}
	if r.err != nil {
		return fmt.Errorf("socket closed: %v", r.err)
	}
	return nil
}
