package switchboard

import (
	"context"
	"time"
)

// Presence is where the nodes keep who is online: each node claims the
// users that have a socket on it, again every heartbeat, and a claim not
// renewed within the presence's TTL lapses, so a node that dies takes its
// users offline within that time. Both implementations (in-process and
// Redis) pass internal/presencetest.
//
// A Presence value speaks for one node; the nodes of a cluster each open
// their own on one backend. Changes are announced on the Bus, not here.
type Presence interface {
	// Claim says this node holds sockets of each of users now: each counts
	// online until the TTL has passed without another Claim (the heartbeat).
	Claim(ctx context.Context, users []string) error
	// Release drops this node's claim on user, whose last socket here
	// closed at at. The user stays online while another node claims it.
	Release(ctx context.Context, user string, at time.Time) error
	// States returns the presence of each of users, in the same order. A
	// user never claimed is offline with a zero LastSeen.
	States(ctx context.Context, users []string) ([]PresenceState, error)
	// Close releases the node's resources (not its claims: they lapse).
	Close() error
}

// PresenceState is one user's presence. LastSeen is when the user was last
// online: the latest release, or the last heartbeat of a claim that lapsed
// (zero while online, and for a user never seen).
type PresenceState struct {
	UserID   string
	Online   bool
	LastSeen time.Time
}
