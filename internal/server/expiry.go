package server

import "time"

// watchExpiry closes p's socket with 4003 at the moment its token expires
// (one runtime timer per socket, stopped when the socket closes). admitFrame
// also refuses a frame after the expiry, and the sweeper
// (closeExpiredSessions) remains for a clock that moves otherwise (tests).
func (s *Server) watchExpiry(p *peer) {
	if p.id.ExpiresAt.IsZero() {
		return
	}
	p.expiry = time.AfterFunc(time.Until(p.id.ExpiresAt), func() {
		if s.svc.SessionExpired(p.id) {
			p.conn.Close(CloseSessionExpired, "session expired; log in again")
		}
	})
}

// stopExpiry releases p's timer when its socket closes.
func (p *peer) stopExpiry() {
	if p.expiry != nil {
		p.expiry.Stop()
	}
}
