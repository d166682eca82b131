package server

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
