package chat

import (
	"context"
	"runtime"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// slots bounds how many of one costly kind of work run at once on the
// node: password hashes (argon2id holds Config.Argon2.MemoryKiB each while
// it runs, so the slots cap that memory) and server-assisted seals (CPU).
// Without a bound, a burst of logins or of plaintext sends into a large
// group takes as much memory and CPU as the requests ask for (issue 18).
type slots chan struct{}

// newSlots returns n slots; n <= 0 is one per core but one (GOMAXPROCS-1,
// at least one), so that a burst of hashes or seals leaves a core to the
// sockets, the other requests and /healthz (as media.Config.Workers does).
func newSlots(n int) slots {
	if n <= 0 {
		n = max(1, runtime.GOMAXPROCS(0)-1)
	}
	return make(slots, n)
}

// tryTake takes a slot if one frees within wait and before ctx is done; a
// true return needs one put.
func (s slots) tryTake(ctx context.Context, wait time.Duration) bool {
	select {
	case s <- struct{}{}:
		return true
	default:
	}
	if wait <= 0 {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

// take waits for a slot as long as ctx allows; a nil return needs one put.
func (s slots) take(ctx context.Context) error {
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s slots) put() { <-s }

// errHashBusy answers a login or signup that found every hashing slot taken
// for Config.HashWait: 503 with Retry-After.
func (s *Service) errHashBusy() *sb.Error {
	e := sb.Errorf(sb.EUNAVAILABLE, wire.CodeUnavailable, "too many logins and signups at once on this node; retry shortly")
	e.RetryAfter = max(s.cfg.HashWait, time.Second)
	return e
}

// hashing runs fn (a password hash or check) in a hashing slot, or returns
// errHashBusy when none frees within Config.HashWait.
func (s *Service) hashing(ctx context.Context, fn func()) error {
	if !s.hashSlots.tryTake(ctx, s.cfg.HashWait) {
		return s.errHashBusy()
	}
	defer s.hashSlots.put()
	fn()
	return nil
}
