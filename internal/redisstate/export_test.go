package redisstate

import (
	"context"
	"time"
)

// OpenLease is Open with another lease for this node's holds, for the tests
// of a node that dies holding sockets and of one that renews them.
func OpenLease(ctx context.Context, c Config, lease time.Duration) (*State, error) {
	return open(ctx, c, lease)
}

// Abandon stops refreshing this node's holds without releasing them, as a
// node killed with its sockets open.
func (s *State) Abandon() {
	close(s.stop)
	<-s.done
	s.client.Close()
}
