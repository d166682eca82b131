package server_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/internal/server"
)

// racingPresence is the node's presence with a hook that runs once, right
// after a read of the watched user's state: what happens there happens
// between a presence_subscribe's read and the moment its socket watches.
type racingPresence struct {
	*inmem.PresenceNode
	mu    sync.Mutex
	user  string
	after func() // runs once, then nil
}

// arm makes the next read of user's state run after.
func (p *racingPresence) arm(user string, after func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.user, p.after = user, after
}

func (p *racingPresence) States(ctx context.Context, users []string) ([]sb.PresenceState, error) {
	st, err := p.PresenceNode.States(ctx, users)
	p.mu.Lock()
	after := p.after
	if after != nil && slices.Contains(users, p.user) {
		p.after = nil
	} else {
		after = nil
	}
	p.mu.Unlock()
	if after != nil {
		after()
	}
	return st, err
}

// TestPresenceChangeDuringSubscribe: bob comes online between alice's
// presence_subscribe reading his state (offline) and her socket being
// registered as his watcher, so the change's announcement finds no watcher.
// alice must still be told he is online, and not only by the node's poll
// (turned off here): she used to stay on "offline" until the next poll.
func TestPresenceChangeDuringSubscribe(t *testing.T) {
	defer server.SetPresencePoll(time.Hour)()
	pres := &racingPresence{PresenceNode: inmem.NewPresence(chat.PresenceTTL, nil).Node("local")}
	n := startNode(t, backends[0].open(t), func(cc *chat.Config, _ *server.Config) { cc.Presence = pres })
	alice := n.signup(t, "alice", "phone")[0]
	bob := n.signup(t, "bob", "phone")[0]
	n.conversation(t, alice, "direct", bob.user)
	a := n.dial(t, alice.token)
	a.expect(t, "synced")

	pres.arm(bob.user, func() {
		b := n.dial(t, bob.token)
		b.expect(t, "synced")
		t.Cleanup(func() { b.c.CloseNow() })
		// Until the claim is in and its announcement went by, with nobody
		// watching bob on this node yet.
		for {
			st, _ := pres.PresenceNode.States(context.Background(), []string{bob.user})
			if st[0].Online {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond)
	})
	a.send(t, map[string]any{"type": "presence_subscribe", "users": []string{bob.user}})
	for {
		f := a.next(t, "presence", "error")
		if f["type"] == "error" || f["user_id"] != bob.user {
			t.Fatalf("got %v", f)
		}
		if f["online"] == true {
			return
		}
	}
}
