package load_test

import (
	"bytes"
	"path/filepath"
	"testing"
)

// TestChatMixAgainstRealNode is the CI's small version of the chat-mix run
// of docs/benchmarks.md: 40 users × 3 devices (120 sockets, two worker
// processes) in direct conversations, small groups and large groups, 60
// messages a second of 100-300 byte ciphertexts, and 8 reconnects a
// second, so that devices come back to a backlog, with each socket
// watching 20 users' presence and 10 typing starts a second. It asserts that every
// stored message reached every other device of its conversation, that
// every reconnected device synced again and nothing failed; not timings.
func TestChatMixAgainstRealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs two binaries")
	}
	dir := t.TempDir()
	bins := buildCommands(t, dir, "switchboard", "sbload")
	url, metrics := startNode(t, bins["switchboard"], filepath.Join(dir, "data"), "--send-rate-conversation", "0")
	const conns = 120
	s, out := runSbload(t, bins["sbload"], filepath.Join(dir, "summary.json"), "run", "--target", url, "--metrics", metrics, "--scenario", "chat", "--procs", "2",
		"--conns", "120", "--devices-per-user", "3", "--dms", "2", "--small-group", "5", "--large-group", "20",
		"--mix", "50,30,20", "--chat-rate", "60", "--churn", "8", "--payload-min", "100", "--payload", "300",
		"--ramp", "2s", "--hold", "5s", "--ack-interval", "300ms", "--watch", "20", "--typing-rate", "10")
	if s.Conns.Connected != conns || s.Conns.Failed != 0 || s.Conns.Dropped != 0 {
		t.Errorf("conns %+v, want all %d connected and none failed or dropped", s.Conns, conns)
	}
	if s.ErrorsTotal != 0 {
		t.Errorf("errors %v (samples %v), want none", s.Errors, s.ErrorSample)
	}
	c := s.Chat
	if c == nil {
		t.Fatalf("no chat summary\n%s", out)
	}
	if c.Users != 40 || len(c.Kinds) != 3 {
		t.Fatalf("chat summary has %d users and %d kinds, want 40 and 3", c.Users, len(c.Kinds))
	}
	if c.Reconnects == 0 || c.Resynced != c.Reconnects {
		t.Errorf("%d reconnects, %d synced again; want some, and every one synced again", c.Reconnects, c.Resynced)
	}
	// A reconnect syncs a device twice: a worker's count of open sockets
	// must not count it twice.
	var held int64
	for _, w := range s.LoadGen.Workers {
		held += w.Connected
		if w.Connected != int64(w.Devices) {
			t.Errorf("worker %d: %d connected of its %d devices after reconnects, want all, once each", w.ID, w.Connected, w.Devices)
		}
	}
	if len(s.LoadGen.Workers) != 2 || held != conns {
		t.Errorf("%d workers holding %d sockets, want 2 holding %d", len(s.LoadGen.Workers), held, conns)
	}
	if c.SentOK == 0 || c.SentOK+c.Abandoned < c.Sent || c.Stored < c.SentOK {
		t.Errorf("sent %d, sent ok %d, abandoned %d, stored %d; want every send answered or abandoned by a reconnect, and stored",
			c.Sent, c.SentOK, c.Abandoned, c.Stored)
	}
	if c.Delivered != c.Expected || c.Lost != 0 || c.Duplicates != 0 || c.OwnEcho != 0 || c.Foreign != 0 || !c.ZeroLoss {
		t.Errorf("chat %+v, want zero loss and nothing extra", *c)
	}
	wantDevices := map[string]float64{"direct": 6, "small_group": 15, "large_group": 60}
	for _, k := range c.Kinds {
		if k.Stored == 0 || k.Delivered == 0 {
			t.Errorf("%s: stored %d, delivered %d; want traffic in every kind", k.Kind, k.Stored, k.Delivered)
		}
		if k.AvgDevices != wantDevices[k.Kind] {
			t.Errorf("%s: %.1f devices per conversation, want %.0f", k.Kind, k.AvgDevices, wantDevices[k.Kind])
		}
		if k.DeliveryLatency.Count != k.Delivered {
			t.Errorf("%s: %d latency samples for %d deliveries", k.Kind, k.DeliveryLatency.Count, k.Delivered)
		}
	}
	if so := c.Social; so == nil || so.Subscribes < conns || so.PresenceFrames == 0 || so.TypingSent == 0 || so.TypingFrames == 0 || so.ReceiptFrames == 0 {
		t.Errorf("social %+v: want every socket subscribed, and presence, typing and receipt frames received", so)
	}
	if bytes.Contains(out, []byte("DATA RACE")) {
		t.Error("the race detector found a race in sbload")
	}
	if t.Failed() {
		t.Logf("sbload output:\n%s", out)
	}
}
