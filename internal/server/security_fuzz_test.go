package server

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// FuzzClientAddr: whatever a client writes in X-Forwarded-For and
// X-Real-IP, the address limits are keyed by is the TCP peer unless the peer
// is a trusted proxy, and otherwise one the headers or the peer named.
func FuzzClientAddr(f *testing.F) {
	f.Add("127.0.0.1:5000", "203.0.113.7", "")
	f.Add("127.0.0.1:5000", "198.51.100.1, 203.0.113.7, 10.0.0.2", "")
	f.Add("10.0.0.2:5000", "203.0.113.7", "")
	f.Add("[::1]:5000", "2001:db8::1", "")
	f.Add("[::1]:5000", "", "2001:db8::7")
	f.Add("127.0.0.1:5000", "junk, 203.0.113.7", "198.51.100.9")
	f.Add("127.0.0.1:5000", "[2001:db8::1]:443,::ffff:203.0.113.7", "")
	f.Add("not an address", "203.0.113.7", "")
	e := newEdge(Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("10.0.0.0/8")}, LimitExempt: []netip.Prefix{}}, unlimited)
	f.Fuzz(func(t *testing.T, remote, xff, realIP string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		if realIP != "" {
			r.Header.Set("X-Real-IP", realIP)
		}
		got := e.clientAddr(r)
		peer := parseAddr(remote)
		if !peer.IsValid() || !inPrefixes(peer, e.trusted) {
			if got != peer {
				t.Fatalf("untrusted peer %q: keyed as %v, want the peer itself", remote, got)
			}
			return
		}
		if got != peer && !strings.Contains(xff+","+realIP, strings.TrimPrefix(got.String(), "::ffff:")) {
			named := false
			for _, h := range strings.Split(xff+","+realIP, ",") {
				named = named || parseAddr(h) == got
			}
			if !named {
				t.Fatalf("keyed as %v, which neither the peer %q nor the headers %q / %q named", got, remote, xff, realIP)
			}
		}
		if key := e.addressKey(r); key == "" {
			t.Fatalf("address %v is exempt with an empty exempt list", got)
		}
	})
}
