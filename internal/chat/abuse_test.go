package chat_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// The tests of issue 18's application-side items: what one request may
// cost the node in stored bytes, CPU and memory, and what an account may be.

// group logs in owner and others (one device each) and returns the owner,
// the others and a group of them all.
func group(t *testing.T, svc *chat.Service, owner string, others ...string) (chat.Identity, []chat.Identity, string) {
	t.Helper()
	o := loginDevice(t, svc, owner)
	var ids []chat.Identity
	var members []string
	for _, name := range others {
		id := loginDevice(t, svc, name)
		ids, members = append(ids, id), append(members, id.UserID)
	}
	conv, err := svc.CreateConversation(context.Background(), o, sb.KindGroup, members, "g")
	if err != nil {
		t.Fatal(err)
	}
	return o, ids, conv
}

// received is how many messages id's device has in conv.
func received(t *testing.T, svc *chat.Service, id chat.Identity, conv string) int {
	t.Helper()
	msgs, err := svc.Messages(context.Background(), id, conv, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	return len(msgs)
}

func TestServerAssistedSendsAreBounded(t *testing.T) {
	ctx := context.Background()
	plaintext := func(n int) []byte { return []byte(strings.Repeat("p", n)) }

	t.Run("a plaintext send to more recipient devices than the cap is refused and stores nothing", func(t *testing.T) {
		svc := limitedService(t, chat.Config{MaxAssistedRecipients: 2})
		alice, others, conv := group(t, svc, "alice", "bob", "carol", "dave")
		_, _, err := svc.Send(ctx, alice, &chat.SendRequest{ClientID: "m1", ConversationID: conv, Plaintext: plaintext(10)})
		if sb.ErrorCode(err) != "invalid_message" || sb.ErrorKind(err) != sb.EINVALID || !strings.Contains(err.Error(), "at most 2") {
			t.Fatalf("plaintext to 3 recipient devices with a cap of 2: %v, want invalid_message naming the cap", err)
		}
		for _, o := range others {
			if n := received(t, svc, o, conv); n != 0 {
				t.Fatalf("a recipient has %d messages after the refused send, want 0", n)
			}
		}
		// The same message sealed on the device is not bounded by the cap.
		if _, _, err := svc.Send(ctx, alice, &chat.SendRequest{ClientID: "m2", ConversationID: conv, Ciphertext: plaintext(10)}); err != nil {
			t.Fatalf("a shared ciphertext to the same group: %v", err)
		}
	})

	t.Run("a plaintext send to as many recipient devices as the cap is sealed for each", func(t *testing.T) {
		svc := limitedService(t, chat.Config{MaxAssistedRecipients: 2})
		alice, others, conv := group(t, svc, "alice", "bob", "carol")
		if _, _, err := svc.Send(ctx, alice, &chat.SendRequest{ClientID: "m1", ConversationID: conv, Plaintext: plaintext(10)}); err != nil {
			t.Fatal(err)
		}
		for _, o := range others {
			if n := received(t, svc, o, conv); n != 1 {
				t.Fatalf("a recipient has %d messages, want 1", n)
			}
		}
	})

	t.Run("a device whose byte budget cannot pay recipients x size is rate_limited", func(t *testing.T) {
		// 2 recipients x 30,000 bytes = 60,000 per send: the first fits in
		// 100,000, the second does not (the request's own bytes are the
		// server's to charge, not counted here).
		svc := limitedService(t, chat.Config{Limits: chat.Limits{BytesPerDevice: chat.Rate{N: 100_000, Per: time.Hour}}})
		alice, others, conv := group(t, svc, "alice", "bob", "carol")
		if _, _, err := svc.Send(ctx, alice, &chat.SendRequest{ClientID: "m1", ConversationID: conv, Plaintext: plaintext(30_000)}); err != nil {
			t.Fatalf("first send: %v", err)
		}
		_, _, err := svc.Send(ctx, alice, &chat.SendRequest{ClientID: "m2", ConversationID: conv, Plaintext: plaintext(30_000)})
		var e *sb.Error
		if sb.ErrorCode(err) != "rate_limited" || !asError(err, &e) || e.RetryAfter <= 0 || !strings.Contains(err.Error(), chat.LimitDeviceBytes) {
			t.Fatalf("second send: %v, want rate_limited on %s with a retry", err, chat.LimitDeviceBytes)
		}
		if n := received(t, svc, others[0], conv); n != 1 {
			t.Fatalf("a recipient has %d messages, want only the first", n)
		}
	})

	t.Run("a plaintext over the size cap is too_large", func(t *testing.T) {
		svc := limitedService(t, chat.Config{MaxAssistedBytes: 1000})
		alice, _, conv := group(t, svc, "alice", "bob")
		_, _, err := svc.Send(ctx, alice, &chat.SendRequest{ClientID: "m1", ConversationID: conv, Plaintext: plaintext(1001)})
		if sb.ErrorCode(err) != "too_large" || sb.ErrorKind(err) != sb.ETOOLARGE {
			t.Fatalf("1001-byte plaintext with a cap of 1000: %v, want too_large", err)
		}
		if _, _, err := svc.Send(ctx, alice, &chat.SendRequest{ClientID: "m2", ConversationID: conv, Plaintext: plaintext(1000)}); err != nil {
			t.Fatalf("1000-byte plaintext: %v", err)
		}
	})
}

func TestServerAssistedSealsTakeOneSlotPerCore(t *testing.T) {
	ctx := context.Background()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1)) // one core: one seal at a time
	svc := limitedService(t, chat.Config{})
	alice, others, conv := group(t, svc, "alice", "bob", "carol")
	open := make(chan struct{})
	release := sync.OnceFunc(func() { close(open) })
	defer release()
	var inFlight, most atomic.Int32
	restore := chat.HookSeal(func(seal func()) {
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-open
		seal()
		inFlight.Add(-1)
	})
	defer restore()
	errs := make(chan error, 2)
	for i, from := range []chat.Identity{alice, others[0]} {
		go func() {
			_, _, err := svc.Send(ctx, from, &chat.SendRequest{ClientID: fmt.Sprint("m", i), ConversationID: conv, Plaintext: []byte("hi")})
			errs <- err
		}()
	}
	for deadline := time.Now().Add(30 * time.Second); inFlight.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no seal started")
		}
	}
	// Give the other send the chance to start a seal beside the first:
	// without the bound it would (a pass does not depend on this wait).
	time.Sleep(100 * time.Millisecond)
	release()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := most.Load(); got > 1 {
		t.Fatalf("%d seals ran at once on a one-core node, want 1", got)
	}
}

func TestPasswordHashingIsBounded(t *testing.T) {
	ctx := context.Background()
	const slots, logins = 2, 6
	svc := limitedService(t, chat.Config{HashSlots: slots, HashWait: 50 * time.Millisecond})
	if _, err := svc.CreateAccount(ctx, "alice", "password-alice"); err != nil {
		t.Fatal(err)
	}
	// Every hash waits for open, so the first two hold their slots while
	// the other logins wait for one.
	open := make(chan struct{})
	release := sync.OnceFunc(func() { close(open) })
	defer release() // a failed test leaves no login waiting
	var inFlight, most atomic.Int32
	restore := chat.HookArgon2(func(hash func()) {
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-open
		hash()
		inFlight.Add(-1)
	})
	defer restore()

	type result struct {
		login *chat.Login
		err   error
	}
	results := make(chan result, logins)
	dev := deviceInfo(t)
	for i := range logins {
		user := "alice"
		if i%2 == 1 {
			user = "nobody" // an unknown user costs the same dummy hash
		}
		go func() {
			l, err := svc.Login(ctx, user, "password-"+user, dev)
			results <- result{l, err}
		}()
	}
	// The excess logins are answered while the first two still hash.
	deadline := time.After(30 * time.Second) // a bound, not a timing
	for range logins - slots {
		select {
		case r := <-results:
			var e *sb.Error
			if sb.ErrorCode(r.err) != "unavailable" || sb.ErrorKind(r.err) != sb.EUNAVAILABLE || !asError(r.err, &e) || e.RetryAfter < time.Second {
				t.Fatalf("a login past the %d hashing slots: %v, want unavailable (503) with a Retry-After", slots, r.err)
			}
		case <-deadline:
			t.Fatal("the logins past the hashing slots were not refused")
		}
	}
	release()
	for range slots {
		r := <-results
		if sb.ErrorCode(r.err) == "unavailable" {
			t.Fatalf("a login holding a slot: %v", r.err)
		}
	}
	if got := most.Load(); got > slots {
		t.Fatalf("%d password hashes ran at once, want at most %d", got, slots)
	}
}

// cancellingStore cancels the login's context while the device limit is
// checked (as a request timeout firing then would) and, like a store that
// does not look at the context, goes on with every call.
type cancellingStore struct {
	sb.Store
	cancel context.CancelFunc
}

func (s *cancellingStore) ActiveDevices(ctx context.Context, userIDs ...string) ([]sb.Device, error) {
	devs, err := s.Store.ActiveDevices(context.WithoutCancel(ctx), userIDs...)
	if s.cancel != nil {
		s.cancel()
	}
	return devs, err
}

func (s *cancellingStore) CreateDevice(ctx context.Context, d *sb.Device, sess *sb.Session) error {
	return s.Store.CreateDevice(context.WithoutCancel(ctx), d, sess)
}

func TestALoginAbandonedBeforeItsCommitCreatesNoDevice(t *testing.T) {
	st, bus := sqliteStore(t)
	cs := &cancellingStore{Store: st}
	svc := chat.New(cs, bus, chat.Config{Argon2: cheapArgon2})
	ctx := context.Background()
	uid, err := svc.CreateAccount(ctx, "alice", "password-alice")
	if err != nil {
		t.Fatal(err)
	}
	loginCtx, cancel := context.WithCancel(ctx)
	cs.cancel = cancel
	_, err = svc.Login(loginCtx, "alice", "password-alice", deviceInfo(t))
	if err == nil {
		t.Fatal("a login whose context ended before the commit succeeded")
	}
	devs, err := st.ActiveDevices(ctx, uid)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 0 {
		t.Fatalf("the abandoned login created %d devices, want none: nobody holds their token, yet they count toward too_many_devices", len(devs))
	}
}

func TestUsernamesIgnoreCase(t *testing.T) {
	ctx := context.Background()
	st, bus := sqliteStore(t)
	svc := chat.New(st, bus, chat.Config{Argon2: cheapArgon2})
	uid, err := svc.CreateAccount(ctx, "Alice", "password-alice")
	if err != nil {
		t.Fatal(err)
	}
	t.Run("alice after Alice is username_taken", func(t *testing.T) {
		for _, name := range []string{"alice", "ALICE", "aLiCe"} {
			if _, err := svc.CreateAccount(ctx, name, "password-other"); sb.ErrorCode(err) != "username_taken" {
				t.Errorf("CreateAccount(%q) after Alice: %v, want username_taken", name, err)
			}
		}
	})
	t.Run("a login as ALICE is Alice's", func(t *testing.T) {
		for _, name := range []string{"ALICE", "alice", "Alice"} {
			l, err := svc.Login(ctx, name, "password-alice", deviceInfo(t))
			if err != nil || l.UserID != uid {
				t.Errorf("Login(%q) = %+v, %v; want Alice's user %s", name, l, err, uid)
			}
		}
	})
	t.Run("the username keeps the form it was created with", func(t *testing.T) {
		u, err := st.UserByName(ctx, "alice")
		if err != nil || u.Username != "Alice" {
			t.Fatalf("UserByName(alice) = %+v, %v; want username Alice", u, err)
		}
	})
}

func TestTheLoginLimitCountsEveryCaseOfAUsername(t *testing.T) {
	ctx := context.Background()
	svc := limitedService(t, chat.Config{Limits: chat.Limits{LoginPerAccount: chat.Rate{N: 3, Per: time.Hour}}})
	svc.CreateAccount(ctx, "alice", "password-alice")
	for _, name := range []string{"alice", "Alice", "ALICE"} {
		svc.Login(ctx, name, "wrong-password", deviceInfo(t))
	}
	if _, err := svc.Login(ctx, "aLiCe", "wrong-password", deviceInfo(t)); sb.ErrorCode(err) != "rate_limited" {
		t.Fatalf("fourth guess, in a fourth case: %v, want rate_limited (a guesser must not get a bucket per case)", err)
	}
}

func TestCommonPasswordsAreRefused(t *testing.T) {
	ctx := context.Background()
	svc := limitedService(t, chat.Config{})
	for _, pw := range []string{"password", "Password1", "12345678", "iloveyou", "TRUSTNO1", "baseball"} {
		t.Run(pw+" is refused as invalid_password saying why", func(t *testing.T) {
			_, err := svc.CreateAccount(ctx, "bob", pw)
			if sb.ErrorCode(err) != "invalid_password" || !strings.Contains(err.Error(), "common") {
				t.Fatalf("CreateAccount with %q: %v, want invalid_password naming the common-password list", pw, err)
			}
		})
	}
	t.Run("a password off the list is accepted", func(t *testing.T) {
		if _, err := svc.CreateAccount(ctx, "bob", "correct horse battery staple"); err != nil {
			t.Fatal(err)
		}
	})
}
