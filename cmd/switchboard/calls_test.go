package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/calls"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// callCluster is two nodes on one PostgreSQL and one Redis behind the
// shipped NGINX, with shortened call timeouts.
type callCluster struct {
	t     *testing.T
	ctx   context.Context
	nodes []*Main
	base  string // where clients go: NGINX, or the only node
}

// newCallCluster starts two nodes behind NGINX.
func newCallCluster(t *testing.T, ring, grace time.Duration) *callCluster {
	db, redis := testenv.Postgres(t), testenv.Redis(t)
	cc := startCallNodes(t, ring, grace, 2, "--db", db, "--redis", redis.URL())
	var urls []string
	for _, m := range cc.nodes {
		urls = append(urls, m.URL())
	}
	cc.base = testenv.NGINX(t, urls).URL()
	return cc
}

// newCallNode starts one node alone: SQLite, the in-process bus.
func newCallNode(t *testing.T, ring, grace time.Duration) *callCluster {
	cc := startCallNodes(t, ring, grace, 1, "--data-dir", t.TempDir())
	cc.base = cc.nodes[0].URL()
	return cc
}

func startCallNodes(t *testing.T, ring, grace time.Duration, n int, args ...string) *callCluster {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cc := &callCluster{t: t, ctx: ctx}
	for range n {
		m := NewMain()
		m.Stderr = &bytes.Buffer{}
		err := m.ParseFlags(append([]string{"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
			"--argon2-memory", "64", "--argon2-time", "1"}, args...), func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		m.Config.Calls = calls.Config{RingTimeout: ring, ReconnectGrace: grace}
		if err := m.Run(ctx); err != nil {
			t.Fatalf("Run: %v", err)
		}
		t.Cleanup(func() { m.Close() })
		cc.nodes = append(cc.nodes, m)
	}
	return cc
}

// user is an account reached through NGINX.
type user struct {
	name string
	c    *client.Client
	id   string
}

func (cc *callCluster) user(name string) *user {
	c, err := client.New(cc.base)
	if err != nil {
		cc.t.Fatal(err)
	}
	id, err := c.CreateAccount(cc.ctx, name, "password-"+name)
	if err != nil {
		cc.t.Fatal(err)
	}
	return &user{name: name, c: c, id: id}
}

// phone is one connected device and the node NGINX put its socket on.
type phone struct {
	t    *testing.T
	s    *client.Session
	conn *client.Conn
	node int
}

// socketsOpen reads each node's switchboard_ws_connections.
func (cc *callCluster) socketsOpen() []int {
	var out []int
	for _, m := range cc.nodes {
		out = append(out, int(testenv.Metric(cc.t, m.AdminURL(), "switchboard_ws_connections")))
	}
	return out
}

// connect logs a new device of u in and connects it through NGINX; it
// tries new devices until one lands on a node in want (any when empty).
func (cc *callCluster) connect(u *user, want ...int) *phone {
	cc.t.Helper()
	for try := range 30 {
		s, err := u.c.Login(cc.ctx, u.name, "password-"+u.name, client.DeviceInfo{Name: fmt.Sprintf("phone-%d", try), KEM: "x25519",
			PublicKey: bytes.Repeat([]byte{9}, 32), SigningKey: make([]byte, 32)})
		if err != nil {
			cc.t.Fatal(err)
		}
		before := cc.socketsOpen()
		conn, err := client.Connect(cc.ctx, s, client.ConnOptions{})
		if err != nil {
			cc.t.Fatal(err)
		}
		select {
		case <-conn.Synced():
		case <-cc.ctx.Done():
			cc.t.Fatal("no synced")
		}
		node := -1
		for deadline := time.Now().Add(20 * time.Second); node < 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			for i, n := range cc.socketsOpen() {
				if n > before[i] {
					node = i
				}
			}
		}
		if node < 0 {
			cc.t.Fatal("no node counts the new socket")
		}
		if len(want) == 0 || slices.Contains(want, node) {
			cc.t.Cleanup(func() { conn.Close() })
			return &phone{t: cc.t, s: s, conn: conn, node: node}
		}
		conn.Close()
		for deadline := time.Now().Add(20 * time.Second); cc.socketsOpen()[node] > before[node] && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		}
	}
	cc.t.Fatalf("30 devices of %s and none on nodes %v", u.name, want)
	return nil
}

// expect waits for the phone's next call event and checks it.
func (p *phone) expect(action, fromDevice string) client.CallEvent {
	p.t.Helper()
	select {
	case e := <-p.conn.CallEvents():
		if e.Action != action || e.FromDeviceID != fromDevice {
			p.t.Fatalf("%s got %s from %q (%+v), want %s from %q", p.s.DeviceID, e.Action, e.FromDeviceID, e, action, fromDevice)
		}
		return e
	case <-time.After(30 * time.Second):
		p.t.Fatalf("%s got no %s within 30 s", p.s.DeviceID, action)
	}
	return client.CallEvent{}
}

// refused waits for the refusal of a call frame and checks its code.
func (p *phone) refused(call client.Call, code string) {
	p.t.Helper()
	e := p.expect(client.CallError, "")
	if e.Err == nil || e.Err.Code != code || e.ID != call.ID {
		p.t.Fatalf("%s: refusal %+v (%v), want %s about %s", p.s.DeviceID, e, e.Err, code, call.ID)
	}
}

// none checks that nothing more came within a short while (a frame that
// should not come at all would have come by then, being behind the ones awaited).
func (p *phone) none() {
	p.t.Helper()
	select {
	case e := <-p.conn.CallEvents():
		p.t.Fatalf("%s got an unexpected call event %+v", p.s.DeviceID, e)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestCallsAcrossNodes is issue 19's call flow through NGINX on two nodes
// sharing Redis: alice on one node calls bob, whose two devices ring (one
// on the other node); one accepts, the other hears answered_elsewhere;
// signals reach only the peer; end; a call nobody answers is missed and
// recorded; an invite in a group is refused; a party whose socket stays
// away past the grace ends the call.
func TestCallsAcrossNodes(t *testing.T) {
	cc := newCallCluster(t, 8*time.Second, 2*time.Second)
	alice, bob, carol := cc.user("alice"), cc.user("bob"), cc.user("carol")
	a1 := cc.connect(alice)
	other := 1 - a1.node
	b1, b2 := cc.connect(bob, other), cc.connect(bob)
	ctx := cc.ctx
	aliceS := a1.s
	dm, err := aliceS.CreateConversation(ctx, "direct", []string{bob.id}, "")
	if err != nil {
		t.Fatal(err)
	}
	group, err := aliceS.CreateConversation(ctx, "group", []string{bob.id, carol.id}, "g")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("alice on node %d, bob's devices on nodes %d and %d", a1.node, b1.node, b2.node)

	// Ring on both, accept on one, answered_elsewhere on the other.
	call, err := a1.conn.Invite(ctx, dm, json.RawMessage(`{"video":false}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []*phone{b1, b2} {
		if e := b.expect(client.CallInvite, a1.s.DeviceID); e.ID != call.ID || e.Conversation != dm || e.FromUserID != alice.id || string(e.Payload) != `{"video":false}` {
			t.Fatalf("the ring is %+v", e)
		}
	}
	if err := b1.conn.Accept(ctx, call, nil); err != nil {
		t.Fatal(err)
	}
	a1.expect(client.CallAccept, b1.s.DeviceID)
	b2.expect(client.CallAnsweredElsewhere, b1.s.DeviceID)
	if err := b2.conn.Accept(ctx, call, nil); err != nil {
		t.Fatal(err)
	}
	b2.refused(call, client.CodeNoSuchCall)

	// Signals go to the peer only.
	if err := a1.conn.Signal(ctx, call, b2.s.DeviceID, json.RawMessage(`{"sdp":"x"}`)); err != nil {
		t.Fatal(err)
	}
	a1.refused(call, client.CodeInvalidCall)
	if err := a1.conn.Signal(ctx, call, b1.s.DeviceID, json.RawMessage(`{"sdp":"offer"}`)); err != nil {
		t.Fatal(err)
	}
	if e := b1.expect(client.CallSignal, a1.s.DeviceID); string(e.Payload) != `{"sdp":"offer"}` {
		t.Fatalf("the signal carries %s", e.Payload)
	}
	if err := b1.conn.Signal(ctx, call, a1.s.DeviceID, json.RawMessage(`{"sdp":"answer"}`)); err != nil {
		t.Fatal(err)
	}
	a1.expect(client.CallSignal, b1.s.DeviceID)
	b2.none()

	// End from the callee reaches the caller.
	if err := b1.conn.EndCall(ctx, call, nil); err != nil {
		t.Fatal(err)
	}
	a1.expect(client.CallEnd, b1.s.DeviceID)

	// Nobody answers: missed for all after the ring timeout, and recorded once.
	missed, err := a1.conn.Invite(ctx, dm, nil)
	if err != nil {
		t.Fatal(err)
	}
	b1.expect(client.CallInvite, a1.s.DeviceID)
	b2.expect(client.CallInvite, a1.s.DeviceID)
	for _, p := range []*phone{a1, b1, b2} {
		if e := p.expect(client.CallMissed, ""); e.ID != missed.ID || e.FromUserID != bob.id {
			t.Fatalf("missed is %+v", e)
		}
	}
	// Stored once, as a call_missed event of the conversation: in its
	// history (and so at sync for a device that was offline).
	var stored []client.Event
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		msgs, err := b1.s.Messages(ctx, dm, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		stored = stored[:0]
		for _, m := range msgs {
			if m.Event != nil && m.Event.Kind == client.EventCallMissed {
				stored = append(stored, *m.Event)
			}
		}
		if len(stored) > 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(stored) != 1 || stored[0].CallID != missed.ID || stored[0].By != alice.id || stored[0].UserID != bob.id {
		t.Fatalf("stored call_missed events %+v, want one for call %s by %s to %s", stored, missed.ID, alice.id, bob.id)
	}

	// A group call is refused, naming the call.
	g, err := a1.conn.Invite(ctx, group, nil)
	if err != nil {
		t.Fatal(err)
	}
	a1.refused(g, client.CodeNotSupported)

	// A party that stays away past the grace ends the call.
	call, err = a1.conn.Invite(ctx, dm, nil)
	if err != nil {
		t.Fatal(err)
	}
	b1.expect(client.CallInvite, a1.s.DeviceID)
	b2.expect(client.CallInvite, a1.s.DeviceID)
	if err := b2.conn.Accept(ctx, call, nil); err != nil {
		t.Fatal(err)
	}
	a1.expect(client.CallAccept, b2.s.DeviceID)
	b1.expect(client.CallAnsweredElsewhere, b2.s.DeviceID)
	b2.conn.Close()
	if e := a1.expect(client.CallEnd, b2.s.DeviceID); e.ID != call.ID {
		t.Fatalf("the end is %+v", e)
	}
	a1.none()
	b1.none()
}

// TestCallsOnOneNode: the call flow on a node alone (SQLite, in-process
// bus), and a party whose socket drops and comes back within the grace
// keeps its call, while one that stays away ends it.
func TestCallsOnOneNode(t *testing.T) {
	cc := newCallNode(t, 30*time.Second, 3*time.Second)
	ctx := cc.ctx
	alice, bob := cc.user("alice"), cc.user("bob")
	a1, b1, b2 := cc.connect(alice), cc.connect(bob), cc.connect(bob)
	dm, err := a1.s.CreateConversation(ctx, "direct", []string{bob.id}, "")
	if err != nil {
		t.Fatal(err)
	}
	call, err := a1.conn.Invite(ctx, dm, nil)
	if err != nil {
		t.Fatal(err)
	}
	b1.expect(client.CallInvite, a1.s.DeviceID)
	b2.expect(client.CallInvite, a1.s.DeviceID)
	if err := b1.conn.Accept(ctx, call, nil); err != nil {
		t.Fatal(err)
	}
	a1.expect(client.CallAccept, b1.s.DeviceID)
	// Not a decline before the accept: the two sockets' frames may be
	// handled in either order, and a device still ringing at the accept
	// is told answered_elsewhere.
	b2.expect(client.CallAnsweredElsewhere, b1.s.DeviceID)

	// alice's socket drops and comes back within the grace: the call goes on.
	a1.conn.Close()
	back, err := client.Connect(ctx, a1.s, client.ConnOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { back.Close() })
	a1.conn = back
	time.Sleep(4 * time.Second) // past the grace: an end would have been sent
	if err := b1.conn.Signal(ctx, call, a1.s.DeviceID, json.RawMessage(`{"ice":"still here"}`)); err != nil {
		t.Fatal(err)
	}
	a1.expect(client.CallSignal, b1.s.DeviceID)
	b1.none()

	// bob's socket drops for good: alice hears the end.
	b1.conn.Close()
	a1.expect(client.CallEnd, b1.s.DeviceID)
	b2.none()
}
