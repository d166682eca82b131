package chat_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// memberCountingStore counts the members of every conversation read
// through Conversations: the read a login or revocation made to find whom to
// tell devices_changed, which grew with every group the user was put into.
type memberCountingStore struct {
	sb.Store
	members atomic.Int64
}

func (s *memberCountingStore) Conversations(ctx context.Context, userID, after string, limit int) ([]sb.Conversation, error) {
	cs, err := s.Store.Conversations(ctx, userID, after, limit)
	for _, c := range cs {
		s.members.Add(int64(len(c.Members)))
	}
	return cs, err
}

func TestLoginAndRevocationCostDoesNotGrowWithGroups(t *testing.T) {
	ctx := context.Background()
	st, bus := sqliteStore(t)
	counting := &memberCountingStore{Store: st}
	svc := chat.New(counting, bus, chat.Config{Argon2: cheapArgon2})
	alice, bob := loginDevice(t, svc, "alice"), loginDevice(t, svc, "bob")
	// Alice is put into 40 groups of 20 by strangers (written to the store
	// directly: the creation limits are another test's).
	const groups, size = 40, 20
	for g := range groups {
		members := []string{alice.UserID}
		for i := range size - 1 {
			u := &sb.User{ID: fmt.Sprintf("usr-g%d-%d", g, i), Username: fmt.Sprintf("g%d-%d", g, i), PasswordHash: "x", CreatedAt: time.Now()}
			if err := st.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
			members = append(members, u.ID)
		}
		slices.Sort(members)
		c := &sb.Conversation{ID: fmt.Sprintf("cnv-g%02d", g), Kind: sb.KindGroup, CreatedBy: members[1], CreatedAt: time.Now(), Members: members}
		if err := st.CreateConversation(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.CreateConversation(ctx, alice, sb.KindDirect, []string{bob.UserID}, ""); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var notified [][]string
	unsub, err := svc.Subscribe(chat.Live{Message: func(*sb.Message) {}, Control: func(c *chat.Control) {
		if c.DevicesChanged == alice.UserID {
			mu.Lock()
			notified = append(notified, c.Notify)
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer unsub()

	second := loginDevice(t, svc, "alice")
	if err := svc.RevokeDevice(ctx, alice, second.DeviceID); err != nil {
		t.Fatal(err)
	}
	t.Run("neither reads the user's conversations with their members", func(t *testing.T) {
		if n := counting.members.Load(); n != 0 {
			t.Fatalf("a login and a revocation read %d members of %d groups: their cost grows with every group the user is put into", n, groups)
		}
	})
	t.Run("both still tell the user's contacts", func(t *testing.T) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			mu.Lock()
			n := len(notified)
			mu.Unlock()
			if n >= 2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(notified) != 2 {
			t.Fatalf("%d devices_changed events for alice, want 2 (login, revocation)", len(notified))
		}
		for _, n := range notified {
			if !slices.Contains(n, bob.UserID) || !slices.Contains(n, alice.UserID) || !slices.Contains(n, "usr-g7-3") {
				t.Fatalf("devices_changed told %d users, without alice, bob or a group member", len(n))
			}
		}
	})
}

func TestBlocks(t *testing.T) {
	ctx := context.Background()
	svc := limitedService(t, chat.Config{})
	alice, bob, carol := loginDevice(t, svc, "alice"), loginDevice(t, svc, "bob"), loginDevice(t, svc, "carol")
	direct, err := svc.CreateConversation(ctx, bob, sb.KindDirect, []string{alice.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	send := func(id chat.Identity, conv, clientID string) error {
		_, _, err := svc.Send(ctx, id, &chat.SendRequest{ClientID: clientID, ConversationID: conv, Ciphertext: []byte("x")})
		return err
	}
	if err := send(bob, direct, "before"); err != nil {
		t.Fatal(err)
	}
	if err := svc.Block(ctx, alice, bob.UserID); err != nil {
		t.Fatal(err)
	}
	blocked := func(t *testing.T, what string, err error) {
		t.Helper()
		if sb.ErrorCode(err) != "blocked" || sb.ErrorKind(err) != sb.EFORBIDDEN {
			t.Fatalf("%s: %v, want 403 blocked", what, err)
		}
	}
	t.Run("the blocked user cannot message the blocker in their direct conversation", func(t *testing.T) {
		blocked(t, "bob's send", send(bob, direct, "after"))
	})
	t.Run("the blocker still can", func(t *testing.T) {
		if err := send(alice, direct, "from alice"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the blocked user cannot start a direct conversation with the blocker", func(t *testing.T) {
		_, err := svc.CreateConversation(ctx, bob, sb.KindDirect, []string{alice.UserID}, "")
		blocked(t, "bob's direct conversation", err)
	})
	t.Run("the blocked user cannot put the blocker into a group", func(t *testing.T) {
		_, err := svc.CreateConversation(ctx, bob, sb.KindGroup, []string{carol.UserID, alice.UserID}, "")
		blocked(t, "bob's group", err)
	})
	t.Run("others are not affected", func(t *testing.T) {
		if _, err := svc.CreateConversation(ctx, carol, sb.KindGroup, []string{alice.UserID, bob.UserID}, ""); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("blocking oneself or an unknown user is refused", func(t *testing.T) {
		if err := svc.Block(ctx, alice, alice.UserID); sb.ErrorKind(err) != sb.EINVALID {
			t.Fatalf("self: %v", err)
		}
		if err := svc.Block(ctx, alice, "usr-nobody"); sb.ErrorKind(err) != sb.ENOTFOUND {
			t.Fatalf("unknown: %v", err)
		}
	})
	t.Run("after unblocking, the send goes through again", func(t *testing.T) {
		if err := svc.Unblock(ctx, alice, bob.UserID); err != nil {
			t.Fatal(err)
		}
		if err := send(bob, direct, "after unblock"); err != nil {
			t.Fatalf("bob's send after the unblock: %v", err)
		}
	})
}

func TestHistoryPages(t *testing.T) {
	ctx := context.Background()
	const size, bound = 40 << 10, 100 << 10 // two messages fit in a page, not three
	svc := limitedService(t, chat.Config{Limits: chat.Limits{HistoryBytes: bound, HistoryPerDevice: 2, HistoryPerNode: 3}})
	alice, bob := loginDevice(t, svc, "alice"), loginDevice(t, svc, "bob")
	conv, err := svc.CreateConversation(ctx, alice, sb.KindDirect, []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	const total = 7
	for i := range total {
		ct := make([]byte, size)
		ct[0] = byte(i)
		if _, _, err := svc.Send(ctx, alice, &chat.SendRequest{ClientID: fmt.Sprint(i), ConversationID: conv, Ciphertext: ct}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("a page stops at the byte bound and next_after continues it exactly", func(t *testing.T) {
		var seqs []int64
		after, pages := int64(0), 0
		for ; pages < 10; pages++ {
			var page []int64
			next, err := svc.History(ctx, bob, conv, after, 1000, func(d *sb.Delivery) error {
				page = append(page, d.Seq)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 2 {
				t.Fatalf("a page of %d messages of %d bytes: over the %d-byte bound", len(page), size, bound)
			}
			seqs = append(seqs, page...)
			if next == 0 {
				break
			}
			if next != page[len(page)-1] {
				t.Fatalf("next_after %d, want the page's last seq %d", next, page[len(page)-1])
			}
			after = next
		}
		if want := []int64{1, 2, 3, 4, 5, 6, 7}; !slices.Equal(seqs, want) {
			t.Fatalf("pages gave seqs %v, want %v: each once, in order", seqs, want)
		}
	})
	t.Run("a page stopped by its count says where to continue too", func(t *testing.T) {
		next, err := svc.History(ctx, bob, conv, 0, 1, func(*sb.Delivery) error { return nil })
		if err != nil || next != 1 {
			t.Fatalf("History(limit 1) = %d, %v; want next_after 1", next, err)
		}
	})
	t.Run("a message over the bound still comes, alone", func(t *testing.T) {
		small := limitedService(t, chat.Config{Limits: chat.Limits{HistoryBytes: 10}})
		a, b := loginDevice(t, small, "a"), loginDevice(t, small, "b")
		c, _ := small.CreateConversation(ctx, a, sb.KindDirect, []string{b.UserID}, "")
		for i := range 2 {
			small.Send(ctx, a, &chat.SendRequest{ClientID: fmt.Sprint(i), ConversationID: c, Ciphertext: make([]byte, 100)})
		}
		n := 0
		next, err := small.History(ctx, b, c, 0, 100, func(*sb.Delivery) error { n++; return nil })
		if err != nil || n != 1 || next != 1 {
			t.Fatalf("got %d messages, next_after %d, %v; want 1 and 1", n, next, err)
		}
	})

	t.Run("concurrent reads past the device's and the node's bounds are refused", func(t *testing.T) {
		// Readers that stop inside their first message hold their slot.
		release := make(chan struct{})
		entered := make(chan struct{})
		var wg sync.WaitGroup
		hold := func(id chat.Identity) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				once := false
				svc.History(ctx, id, conv, 0, 1, func(*sb.Delivery) error {
					if !once {
						once = true
						entered <- struct{}{}
						<-release
					}
					return nil
				})
			}()
			<-entered
		}
		defer wg.Wait()
		defer close(release)
		hold(bob)
		hold(bob)
		_, err := svc.History(ctx, bob, conv, 0, 1, func(*sb.Delivery) error { return nil })
		var e *sb.Error
		if !errors.As(err, &e) || e.Code != "rate_limited" || e.RetryAfter <= 0 {
			t.Fatalf("bob's third read at once: %v, want rate_limited with Retry-After", err)
		}
		if _, _, err := svc.Send(ctx, bob, &chat.SendRequest{ClientID: "to alice", ConversationID: conv, Ciphertext: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		hold(alice) // the node's third read
		_, err = svc.History(ctx, alice, conv, 0, 1, func(*sb.Delivery) error { return nil })
		if !errors.As(err, &e) || e.Code != "unavailable" || e.Kind != sb.EUNAVAILABLE || e.RetryAfter <= 0 {
			t.Fatalf("a fourth read on a node of three: %v, want unavailable with Retry-After", err)
		}
	})
}
