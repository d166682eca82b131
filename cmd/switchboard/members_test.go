package main

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-chat/switchboard/client"
	"github.com/switchboard-chat/switchboard/internal/testenv"
)

// TestMembershipAcrossNodes: two nodes on one PostgreSQL and one Redis,
// behind the shipped NGINX. Membership changes made on node 0 reach the
// sockets on node 1 and behind NGINX as events, in seq order with the
// messages, and node 1's cached members follow them: its next send is
// checked against the new members (devices_mismatch with the added
// member's device missing, the removed member's extra).
func TestMembershipAcrossNodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var urls []string
	for _, m := range startNodes(t, ctx, 2, testenv.Postgres(t), testenv.Redis(t).URL()) {
		urls = append(urls, m.URL())
	}
	proxy := testenv.NGINX(t, urls).URL()

	login := func(url, name string) *client.Session { return testenv.SignupLogin(ctx, t, url, name) }
	// alice (the admin) on node 0; bob and carol on node 1; dave behind NGINX.
	alice, bob, carol, dave := login(urls[0], "alice"), login(urls[1], "bob"), login(urls[1], "carol"), login(proxy, "dave")
	conns := map[*client.Session]*client.Conn{}
	for _, s := range []*client.Session{alice, bob, carol, dave} {
		c, err := client.Connect(ctx, s, client.ConnOptions{AutoAck: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		select {
		case <-c.Synced():
		case <-ctx.Done():
			t.Fatal("no synced")
		}
		conns[s] = c
	}
	next := func(s *client.Session) client.Message {
		t.Helper()
		select {
		case m := <-conns[s].Messages():
			return m
		case <-ctx.Done():
			t.Fatalf("%s received nothing", s.UserID)
		}
		return client.Message{}
	}
	wantEvent := func(s *client.Session, seq int64, kind, user string) {
		t.Helper()
		m := next(s)
		if m.Event == nil || m.Seq != seq || m.Event.Kind != kind || m.Event.UserID != user || m.Ciphertext != nil {
			t.Fatalf("%s got %+v (event %+v), want event %d %s of %s", s.UserID, m, m.Event, seq, kind, user)
		}
	}

	conv, err := alice.CreateConversation(ctx, client.KindGroup, []string{bob.UserID, dave.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	sendFromBob := func(id string, to ...*client.Session) (client.Sent, error) {
		cts := map[string][]byte{}
		for _, s := range to {
			cts[s.DeviceID] = []byte(id)
		}
		return conns[bob].Send(ctx, client.SendRequest{ID: id, Conversation: conv, Ciphertexts: cts})
	}
	// Node 1 caches the members (alice, bob, dave) at bob's first send.
	if _, err := sendFromBob("m1", alice, dave); err != nil {
		t.Fatal(err)
	}
	next(alice)
	next(dave)

	seq, err := alice.AddMembers(ctx, conv, carol.UserID)
	if err != nil || seq != 2 {
		t.Fatalf("AddMembers on node 0: %d, %v; want seq 2", seq, err)
	}
	for _, s := range []*client.Session{alice, bob, carol, dave} {
		wantEvent(s, 2, client.EventMemberAdded, carol.UserID)
	}
	var e *client.Error
	if _, err := sendFromBob("m3-old", alice, dave); !errors.As(err, &e) || e.Code != client.CodeDevicesMismatch || !slices.Equal(e.Missing, []string{carol.DeviceID}) {
		t.Fatalf("a send on node 1 without carol: %v, want devices_mismatch missing her device", err)
	}
	if sent, err := sendFromBob("m3", alice, carol, dave); err != nil || sent.Seq != 3 {
		t.Fatalf("m3: %+v, %v", sent, err)
	}
	if m := next(carol); m.Seq != 3 || string(m.Ciphertext) != "m3" {
		t.Fatalf("carol got %+v, want m3", m)
	}
	next(alice)
	next(dave)

	if seq, err := alice.RemoveMember(ctx, conv, carol.UserID); err != nil || seq != 4 {
		t.Fatalf("RemoveMember on node 0: %d, %v; want seq 4", seq, err)
	}
	for _, s := range []*client.Session{alice, bob, carol, dave} {
		wantEvent(s, 4, client.EventMemberRemoved, carol.UserID)
	}
	if _, err := sendFromBob("m5-old", alice, carol, dave); !errors.As(err, &e) || e.Code != client.CodeDevicesMismatch || !slices.Equal(e.Extra, []string{carol.DeviceID}) {
		t.Fatalf("a send on node 1 to carol: %v, want devices_mismatch with her device extra", err)
	}
	if sent, err := sendFromBob("m5", alice, dave); err != nil || sent.Seq != 5 {
		t.Fatalf("m5: %+v, %v", sent, err)
	}
	for _, s := range []*client.Session{alice, dave} {
		if m := next(s); m.Seq != 5 {
			t.Fatalf("%s got %+v, want m5", s.UserID, m)
		}
	}
	if _, _, err := carol.MessagesPage(ctx, conv, 4, 10); !errors.As(err, &e) || e.Code != client.CodeNotMember {
		t.Fatalf("carol's history after her removal: %v, want not_member", err)
	}
	if page, err := carol.Messages(ctx, conv, 0, 10); err != nil || len(page) != 3 || page[2].Event == nil {
		t.Fatalf("carol's history: %+v, %v; want her addition, m3 and her removal", page, err)
	}
	if seq, err := dave.Leave(ctx, conv); err != nil || seq != 6 {
		t.Fatalf("dave leaves through NGINX: %d, %v", seq, err)
	}
	for _, s := range []*client.Session{alice, bob, dave} {
		wantEvent(s, 6, client.EventMemberLeft, dave.UserID)
	}
}

// TestMemberAddedOnANodeNotInTheConversation: with interest-based fan-out a
// node subscribes only to the conversations its sockets are in, so a user
// added to a group whose only socket is on a node that holds none of the
// group must still get the member_added event and what follows: the add
// tells the added users' nodes to hold the conversation (a Joined control
// event), as a creation does.
func TestMemberAddedOnANodeNotInTheConversation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nodes := startNodes(t, ctx, 2, testenv.Postgres(t), testenv.Redis(t).URL())
	connect := func(m *Main, name string) (*client.Session, *client.Conn) {
		s := testenv.SignupLogin(ctx, t, m.URL(), name)
		return s, connectSynced(ctx, t, s)
	}
	alice, aliceConn := connect(nodes[0], "alice")
	erin, erinConn := connect(nodes[1], "erin") // node 1 holds no socket in the group
	conv, err := alice.CreateConversation(ctx, client.KindGroup, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.AddMembers(ctx, conv, erin.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := aliceConn.Send(ctx, client.SendRequest{ID: "m2", Conversation: conv,
		Ciphertexts: map[string][]byte{erin.DeviceID: []byte("m2")}}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int64{1, 2} {
		select {
		case m := <-erinConn.Messages():
			if m.Seq != want || (want == 1) != (m.Event != nil && m.Event.Kind == client.EventMemberAdded) {
				t.Fatalf("erin got %+v (event %+v), want seq %d (1: her member_added, 2: m2)", m, m.Event, want)
			}
		case <-ctx.Done():
			t.Fatalf("erin, on a node that held no socket in the group, got no seq %d", want)
		}
	}
}
