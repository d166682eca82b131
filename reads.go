package switchboard

import "context"

// lagKey marks a context whose Store reads may lag (MayLag).
type lagKey struct{}

// MayLag returns ctx marked so that the Store reads made under it may be
// answered by a read replica that is behind the primary by at most the
// store's lag bound (PostgreSQL's --replica-max-lag). Only reads whose
// answer is shown, not acted on, are marked: a history page, the
// conversation list, a user's device directory. Checks that decide
// something (membership and devices on a send, a sync's heads and cursors,
// authentication) are never marked and always read the primary. A store
// without replicas ignores the mark.
func MayLag(ctx context.Context) context.Context { return context.WithValue(ctx, lagKey{}, true) }

// LagAllowed reports whether ctx was marked by MayLag.
func LagAllowed(ctx context.Context) bool {
	ok, _ := ctx.Value(lagKey{}).(bool)
	return ok
}
