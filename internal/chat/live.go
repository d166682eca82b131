package chat

import "context"

// Heads returns the head seq of each conversation of the caller's user:
// what a node compares with what it wrote to the user's sockets when the
// bus is back after an outage, to read what they missed.
func (s *Service) Heads(ctx context.Context, id Identity) (map[string]int64, error) {
	return s.store.Heads(ctx, id.UserID)
}
