package client

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// othersWith counts the frames the fake recorded that contain s.
func (f *fakeServer) othersWith(s string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, o := range f.others {
		if strings.Contains(o, s) {
			n++
		}
	}
	return n
}

func nextEvent(t *testing.T, c *Conn) Notice {
	t.Helper()
	select {
	case ev := <-c.Notices():
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
		return nil
	}
}

func TestPresenceTypingReceiptsInTheSDK(t *testing.T) {
	f := newFake(t)
	c := f.connect(ConnOptions{})
	f.mu.Lock()
	var fc *fakeConn
	for l := range f.live {
		fc = l
	}
	f.mu.Unlock()
	ctx := ctxFor(t, 5*time.Second)

	t.Run("the frames are written as the protocol says", func(t *testing.T) {
		if err := c.SubscribePresence(ctx, []string{"usr_bob"}); err != nil {
			t.Fatal(err)
		}
		if err := c.Typing(ctx, "cnv_1", true); err != nil {
			t.Fatal(err)
		}
		if err := c.MarkRead(ctx, "cnv_1", 5); err != nil {
			t.Fatal(err)
		}
		if err := c.MarkRead(ctx, "cnv_1", 3); err != nil { // lower: not sent
			t.Fatal(err)
		}
		for _, want := range []string{`{"type":"presence_subscribe","users":["usr_bob"]}`,
			`{"type":"typing","conversation":"cnv_1","state":"start"}`, `{"type":"read","conversation":"cnv_1","seq":5}`} {
			eventually(t, want, func() bool { return f.othersWith(want) == 1 })
		}
		if n := f.othersWith(`"seq":3`); n != 0 {
			t.Fatalf("a lower read mark was sent")
		}
	})
	t.Run("presence, typing and receipt frames arrive as typed events", func(t *testing.T) {
		_ = fc.write(map[string]any{"type": "presence", "user_id": "usr_bob", "online": false, "last_seen": "2026-12-06T10:00:00.123Z"})
		_ = fc.write(map[string]any{"type": "typing", "conversation": "cnv_1", "user_id": "usr_bob", "state": "stop"})
		_ = fc.write(map[string]any{"type": "receipt", "conversation": "cnv_1", "user_id": "usr_bob", "delivered": 7, "read": 6})
		p, ok := nextEvent(t, c).(*PresenceEvent)
		if !ok || p.UserID != "usr_bob" || p.Online || !p.LastSeen.Equal(time.Date(2026, 12, 6, 10, 0, 0, 123e6, time.UTC)) {
			t.Fatalf("presence event %+v", p)
		}
		if ty, ok := nextEvent(t, c).(*TypingEvent); !ok || *ty != (TypingEvent{Conversation: "cnv_1", UserID: "usr_bob", Typing: false}) {
			t.Fatalf("typing event %+v", ty)
		}
		if r, ok := nextEvent(t, c).(*ReceiptEvent); !ok || *r != (ReceiptEvent{Conversation: "cnv_1", UserID: "usr_bob", Delivered: 7, Read: 6}) {
			t.Fatalf("receipt event %+v", r)
		}
	})
	t.Run("a new socket gets the presence subscription and the read marks again, not the typing", func(t *testing.T) {
		f.dropAll(4000, "test")
		f.nextConn()
		eventually(t, "the subscription again", func() bool { return f.othersWith("presence_subscribe") == 2 })
		eventually(t, "the read mark again", func() bool { return f.othersWith(`"type":"read"`) == 2 })
		if n := f.othersWith(`"type":"typing"`); n != 1 {
			t.Fatalf("typing written %d times, want once", n)
		}
		if !slices.Contains([]int{2}, f.othersWith("usr_bob")) {
			t.Fatalf("frames %v", f.others)
		}
	})
	c.Close()
}
