package server

import "time"

// RouteAccess returns every route pattern a node configured with cfg serves,
// and who may call it (public, authenticated, socket, operator): the list
// the authorization matrix must cover.
func RouteAccess(cfg Config) map[string]string {
	s := &Server{cfg: cfg}
	out := make(map[string]string)
	for _, r := range s.routeTable() {
		out[r.pattern] = [...]string{"public", "authenticated", "socket", "operator"}[r.access]
	}
	return out
}

// AdminRouteAccess is RouteAccess for the admin listener's routes.
func AdminRouteAccess(cfg Config) map[string]string {
	s := &Server{cfg: cfg}
	out := make(map[string]string)
	for _, r := range s.adminRouteTable() {
		out[r.pattern] = [...]string{"public", "authenticated", "socket", "operator"}[r.access]
	}
	return out
}

// CloseExpired runs one pass of the sweeper that closes sockets whose token expired.
func CloseExpired(s *Server) { s.closeExpired() }

// Held is how many messages of a conversation the node's sequencer holds,
// waiting for the seqs before them.
func Held(s *Server, convID string) int {
	q := s.hub.seq
	q.mu.Lock()
	defer q.mu.Unlock()
	if c := q.convs[convID]; c != nil {
		return len(c.held)
	}
	return 0
}

// SetConversationsPageBytes sets where a page of GET /v1/conversations
// ends, and returns a func that restores it.
func SetConversationsPageBytes(n int) (restore func()) {
	old := conversationsPageBytes
	conversationsPageBytes = n
	return func() { conversationsPageBytes = old }
}

// SetPresencePoll sets how often a node started afterwards reads its
// watched users' presence, and returns a func that restores it.
func SetPresencePoll(d time.Duration) (restore func()) {
	old := presencePoll
	presencePoll = d
	return func() { presencePoll = old }
}
