package client

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestSendAnswers(t *testing.T) {
	tests := []struct {
		name     string
		onSend   func(fc *fakeConn, f fakeSend)
		wantSeq  int64
		wantErr  *Error
		wantSent bool
	}{
		{
			name:     "a sent frame with the request's id is the receipt",
			wantSeq:  1,
			wantSent: true,
		},
		{
			name: "an error frame with the request's id becomes an *Error with status 0",
			onSend: func(fc *fakeConn, f fakeSend) {
				fc.write(map[string]any{"type": "error", "id": f.ID, "code": "devices_mismatch",
					"message": "ciphertexts do not match", "missing": []string{"dev_b"}, "extra": []string{"dev_x"}})
			},
			wantErr: &Error{Code: "devices_mismatch", Detail: "ciphertexts do not match",
				Missing: []string{"dev_b"}, Extra: []string{"dev_x"}, ID: "m1"},
		},
		{
			name: "answers for other ids and id-less errors are not taken for this send",
			onSend: func(fc *fakeConn, f fakeSend) {
				fc.write(map[string]any{"type": "sent", "id": "other", "conversation": "cnv_1", "seq": 99, "ts": fakeTS(time.Now())})
				fc.write(map[string]any{"type": "error", "code": "bad_frame", "message": "bad seq"})
				fc.write(map[string]any{"type": "presence", "user_id": "usr_x"})
				fc.write(map[string]any{"type": "sent", "id": f.ID, "conversation": f.Conversation, "seq": 7, "ts": fakeTS(time.Now())})
			},
			wantSeq:  7,
			wantSent: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			f.onSend = tt.onSend
			c := f.connect(ConnOptions{})
			sent, err := c.Send(ctxFor(t, 5*time.Second), SendRequest{ID: "m1", Conversation: "cnv_1", Ciphertext: []byte("ct")})
			if tt.wantErr != nil {
				var e *Error
				if !errors.As(err, &e) || !reflect.DeepEqual(e, tt.wantErr) {
					t.Fatalf("err = %#v, want %#v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if sent.ID != "m1" || sent.Conversation != "cnv_1" || sent.Seq != tt.wantSeq || sent.TS.IsZero() {
				t.Fatalf("sent = %+v", sent)
			}
		})
	}
}

func TestSendWritesTheProtocolsFrame(t *testing.T) {
	tests := []struct {
		name string
		req  SendRequest
		want fakeSend
	}{
		{
			name: "per-device ciphertexts travel as a base64 map",
			req:  SendRequest{ID: "a", Conversation: "cnv_1", Ciphertexts: map[string][]byte{"dev_b": {1, 2, 3}, "dev_c": {0xff}}},
			want: fakeSend{Type: "send", ID: "a", Conversation: "cnv_1", Ciphertexts: map[string]string{"dev_b": "AQID", "dev_c": "/w=="}},
		},
		{
			name: "a shared ciphertext travels as one base64 string",
			req:  SendRequest{ID: "b", Conversation: "cnv_1", Ciphertext: []byte("hi")},
			want: fakeSend{Type: "send", ID: "b", Conversation: "cnv_1", Ciphertext: ptr(base64.StdEncoding.EncodeToString([]byte("hi")))},
		},
		{
			name: "an empty map is sent as an empty map, for the server to judge",
			req:  SendRequest{ID: "c", Conversation: "cnv_1", Ciphertexts: map[string][]byte{}},
			want: fakeSend{Type: "send", ID: "c", Conversation: "cnv_1", Ciphertexts: map[string]string{}},
		},
	}
	f := newFake(t)
	c := f.connect(ConnOptions{})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := c.Send(ctxFor(t, 5*time.Second), tt.req); err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			got := f.sends[i]
			f.mu.Unlock()
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("frame = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSendRejectsInvalidRequestsLocally(t *testing.T) {
	tests := []struct {
		name string
		req  SendRequest
	}{
		{"a request with neither ciphertext is refused", SendRequest{Conversation: "cnv_1"}},
		{"a request with both ciphertexts is refused", SendRequest{Conversation: "cnv_1", Ciphertext: []byte("x"), Ciphertexts: map[string][]byte{"dev_b": []byte("y")}}},
		{"a request without a conversation is refused", SendRequest{Ciphertext: []byte("x")}},
		{"an id over 64 bytes is refused", SendRequest{ID: strings.Repeat("i", 65), Conversation: "cnv_1", Ciphertext: []byte("x")}},
	}
	f := newFake(t)
	c := f.connect(ConnOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Send(ctxFor(t, time.Second), tt.req)
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeInvalidMessage || e.Status != 0 {
				t.Fatalf("err = %v, want a local invalid_message", err)
			}
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sends) != 0 {
		t.Fatalf("%d invalid frames reached the server", len(f.sends))
	}
}

func TestSendGeneratesDistinctIDs(t *testing.T) {
	f := newFake(t)
	c := f.connect(ConnOptions{})
	a, err := c.Send(ctxFor(t, 5*time.Second), SendRequest{Conversation: "cnv_1", Ciphertext: []byte("1")})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Send(ctxFor(t, 5*time.Second), SendRequest{Conversation: "cnv_1", Ciphertext: []byte("2")})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == "" || a.ID == b.ID || len(a.ID) > 64 {
		t.Fatalf("ids %q and %q", a.ID, b.ID)
	}
	if a.Seq != 1 || b.Seq != 2 {
		t.Fatalf("seqs %d and %d, want 1 and 2", a.Seq, b.Seq)
	}
}

func TestConcurrentSendsGetTheirOwnAnswers(t *testing.T) {
	const n = 20
	f := newFake(t)
	var mu sync.Mutex
	var held []fakeSend
	// Hold every send until all arrived, then answer in reverse order.
	f.onSend = func(fc *fakeConn, fr fakeSend) {
		mu.Lock()
		defer mu.Unlock()
		held = append(held, fr)
		if len(held) < n {
			return
		}
		for i := len(held) - 1; i >= 0; i-- {
			var seq int64
			fmt.Sscanf(held[i].ID, "id-%d", &seq)
			fc.write(map[string]any{"type": "sent", "id": held[i].ID, "conversation": "cnv_1", "seq": seq, "ts": fakeTS(time.Now())})
		}
	}
	c := f.connect(ConnOptions{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id := fmt.Sprintf("id-%d", i)
			sent, err := c.Send(ctxFor(t, 5*time.Second), SendRequest{ID: id, Conversation: "cnv_1", Ciphertext: []byte("x")})
			if err != nil || sent.ID != id || sent.Seq != int64(i) {
				t.Errorf("Send(%s) = %+v, %v", id, sent, err)
			}
		})
	}
	wg.Wait()
}

func TestSendIsRetriedOnTheNextSocketWithTheSameID(t *testing.T) {
	f := newFake(t)
	f.onSend = func(fc *fakeConn, fr fakeSend) {
		if fc.n == 1 {
			fc.close(0, "") // drop without answering
			return
		}
		f.answer(fc, fr)
	}
	c := f.connect(ConnOptions{})
	sent, err := c.Send(ctxFor(t, 5*time.Second), SendRequest{ID: "once", Conversation: "cnv_1", Ciphertext: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if sent.Seq != 1 || len(f.sends) != 2 || f.sends[0].ID != "once" || f.sends[1].ID != "once" {
		t.Fatalf("sent %+v after frames %+v", sent, f.sends)
	}
}

func TestPipelinedSendsKeepTheirOrderAcrossAReconnect(t *testing.T) {
	// Sends pipelined into one conversation and not answered before the
	// socket drops are written again on the next socket in the order they
	// were called, so their seqs follow that order (issue 16, defect 5).
	const n = 32
	f := newFake(t)
	f.onSend = func(fc *fakeConn, fr fakeSend) {
		if fc.n > 1 {
			f.answer(fc, fr)
			return
		}
		f.mu.Lock()
		all := len(f.sends) == n
		f.mu.Unlock()
		if all {
			fc.close(0, "") // drop with every send unanswered
		}
	}
	c := f.connect(ConnOptions{})
	sent := make([]Sent, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var err error
			sent[i], err = c.Send(ctxFor(t, 10*time.Second), SendRequest{ID: fmt.Sprintf("m%02d", i), Conversation: "cnv_1", Ciphertext: []byte("x")})
			if err != nil {
				t.Errorf("Send m%02d: %v", i, err)
			}
		})
		// The next Send is called only once this one's frame arrived. (Not
		// len(c.calls) == i+1: after the last frame the socket drops, the
		// next one answers, and calls leave c.calls before a look sees 32.)
		eventually(t, "the Send is made", func() bool {
			f.mu.Lock()
			defer f.mu.Unlock()
			return len(f.sends) >= i+1
		})
	}
	wg.Wait()
	for i, s := range sent {
		if s.Seq != int64(i+1) {
			var got []int64
			for _, s := range sent {
				got = append(got, s.Seq)
			}
			t.Fatalf("seqs in call order: %v, want 1 to %d in order", got, n)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sends) != 2*n {
		t.Fatalf("%d send frames, want %d (each once per socket)", len(f.sends), 2*n)
	}
}

func TestSendGivesUpWithItsContext(t *testing.T) {
	f := newFake(t)
	f.onSend = func(*fakeConn, fakeSend) {} // never answers
	c := f.connect(ConnOptions{})
	_, err := c.Send(ctxFor(t, 50*time.Millisecond), SendRequest{ID: "x", Conversation: "cnv_1", Ciphertext: []byte("x")})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.calls) != 0 {
		t.Fatalf("%d abandoned calls kept", len(c.calls))
	}
}

func TestSendOnASocketClosedForATooBigFrameFails(t *testing.T) {
	f := newFake(t)
	f.onSend = func(fc *fakeConn, fr fakeSend) { fc.close(websocket.StatusMessageTooBig, "frame too big") }
	c := f.connect(ConnOptions{})
	_, err := c.Send(ctxFor(t, 5*time.Second), SendRequest{ID: "big", Conversation: "cnv_1", Ciphertext: []byte("x")})
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != CloseTooBig {
		t.Fatalf("err = %v, want a 1009 CloseError", err)
	}
	f.nextConn() // and the Conn itself carries on
	waitSynced(t, c)
}

func TestReconnectsAfterTheSocketDrops(t *testing.T) {
	tests := []struct {
		name string
		code websocket.StatusCode
	}{
		{"an abrupt drop is followed by a reconnect", 0},
		{"going away (1001) is followed by a reconnect", websocket.StatusGoingAway},
		{"slow consumer (4008) is followed by a reconnect", CloseSlowConsumer},
		{"ping timeout (4009) is followed by a reconnect", ClosePingTimeout},
		{"a normal closure by the server is followed by a reconnect", websocket.StatusNormalClosure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			c := f.connect(ConnOptions{})
			f.dropAll(tt.code, "bye")
			f.nextConn()
			waitSynced(t, c)
			if err := c.Err(); err != nil {
				t.Fatalf("Err = %v while running", err)
			}
		})
	}
}

func TestReconnectBacksOffWithJitter(t *testing.T) {
	const lo, hi = 20 * time.Millisecond, 60 * time.Millisecond
	f := newFake(t)
	f.refuse = func(n int) int {
		if n >= 2 && n <= 6 {
			return 503
		}
		return 0
	}
	c := f.connect(ConnOptions{MinBackoff: lo, MaxBackoff: hi})
	dropped := time.Now()
	f.dropAll(0, "")
	f.nextConn()
	waitSynced(t, c)

	f.mu.Lock()
	attempts := append([]time.Time{dropped}, f.attempts[1:]...)
	f.mu.Unlock()
	if len(attempts) != 7 {
		t.Fatalf("%d reconnect attempts, want 6", len(attempts)-1)
	}
	for k := 1; k < len(attempts); k++ {
		d := min(lo<<(k-1), hi)
		if gap := attempts[k].Sub(attempts[k-1]); gap < d/2-2*time.Millisecond {
			t.Errorf("attempt %d came %v after the previous one, want at least %v", k, gap, d/2)
		}
	}
}

func TestBackoffStaysWithinItsBounds(t *testing.T) {
	const lo, hi = 100 * time.Millisecond, 5 * time.Second
	tests := []struct {
		name string
		n    int
		want time.Duration // the upper bound; the lower is half of it
	}{
		{"the first attempt waits about the minimum", 0, lo},
		{"each attempt doubles the wait", 3, 8 * lo},
		{"the wait stops at the maximum", 6, hi},
		{"a huge attempt count neither overflows nor passes the maximum", 200, hi},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := backoff(tt.n, lo, hi)
				if d < tt.want/2 || d > tt.want {
					t.Fatalf("backoff(%d) = %v, want within [%v, %v]", tt.n, d, tt.want/2, tt.want)
				}
				seen[d] = true
			}
			if len(seen) < 10 {
				t.Fatalf("only %d distinct waits: no jitter", len(seen))
			}
		})
	}
}

func TestNoReconnectAfterAFinalClose(t *testing.T) {
	tests := []struct {
		name   string
		code   websocket.StatusCode
		reason string
	}{
		{"a revoked device (4001) is not reconnected and the code is kept", CloseDeviceRevoked, "device revoked"},
		{"a policy violation (1008) is not reconnected and the code is kept", websocket.StatusPolicyViolation, "policy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t)
			c := f.connect(ConnOptions{})
			f.dropAll(tt.code, tt.reason)
			select {
			case <-c.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("the Conn did not end")
			}
			var ce *CloseError
			if err := c.Err(); !errors.As(err, &ce) || ce.Code != int(tt.code) || ce.Reason != tt.reason {
				t.Fatalf("Err = %v, want close %d %q", err, tt.code, tt.reason)
			}
			if _, ok := <-c.Messages(); ok {
				t.Fatal("Messages still open")
			}
			if _, err := c.Send(ctxFor(t, time.Second), SendRequest{Conversation: "cnv_1", Ciphertext: []byte("x")}); !errors.As(err, &ce) {
				t.Fatalf("Send after the end = %v", err)
			}
			time.Sleep(100 * time.Millisecond)
			if n := f.attemptCount(); n != 1 {
				t.Fatalf("%d upgrade attempts, want 1", n)
			}
		})
	}
}

func TestConnectWithABadTokenIsUnauthorized(t *testing.T) {
	f := newFake(t)
	_, err := Connect(ctxFor(t, 5*time.Second), f.session("tok_bad"), ConnOptions{})
	var e *Error
	if !errors.As(err, &e) || e.Status != 401 || e.Code != CodeUnauthorized {
		t.Fatalf("err = %v, want 401 unauthorized", err)
	}
}

func TestReconnectStopsWhenTheUpgradeIsRefused(t *testing.T) {
	f := newFake(t)
	f.refuse = func(n int) int {
		if n > 1 {
			return 401
		}
		return 0
	}
	c := f.connect(ConnOptions{})
	f.dropAll(0, "")
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the Conn did not end")
	}
	var e *Error
	if err := c.Err(); !errors.As(err, &e) || e.Status != 401 {
		t.Fatalf("Err = %v, want a 401 *Error", err)
	}
}

func TestMessagesAreDecoded(t *testing.T) {
	f := newFake(t)
	c := f.connect(ConnOptions{})
	before := time.Now().Add(-time.Second)
	f.publish("cnv_1", []byte{0, 1, 2, 0xfe})
	m := recv(t, c)
	if m.Conversation != "cnv_1" || m.Seq != 1 || m.SenderUserID != "usr_other" || m.SenderDeviceID != "dev_other" ||
		!reflect.DeepEqual(m.Ciphertext, []byte{0, 1, 2, 0xfe}) || m.TS.Before(before) || m.TS.Location() != time.UTC {
		t.Fatalf("message = %+v", m)
	}
}

type convSeq struct {
	Conv string
	Seq  int64
}

func TestMessagesAreDeliveredOnceAcrossReconnects(t *testing.T) {
	f := newFake(t)
	c := f.connect(ConnOptions{})
	for _, conv := range []string{"cnv_a", "cnv_a", "cnv_b", "cnv_a"} {
		f.publish(conv, []byte(conv))
	}
	var got []convSeq
	for range 4 {
		m := recv(t, c)
		got = append(got, convSeq{m.Conversation, m.Seq})
	}
	// Nothing was acked: the next connection replays all four.
	f.dropAll(websocket.StatusGoingAway, "restart")
	f.nextConn()
	waitSynced(t, c)
	f.publish("cnv_b", []byte("new"))
	m := recv(t, c)
	got = append(got, convSeq{m.Conversation, m.Seq})
	expectNoMessage(t, c, 100*time.Millisecond)

	want := []convSeq{{"cnv_a", 1}, {"cnv_a", 2}, {"cnv_b", 1}, {"cnv_a", 3}, {"cnv_b", 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestDeliveredSkipsWhatTheApplicationHas(t *testing.T) {
	f := newFake(t)
	for range 3 {
		f.publish("cnv_a", []byte("a"))
	}
	f.publish("cnv_b", []byte("b"))
	c := f.connect(ConnOptions{Delivered: map[string]int64{"cnv_a": 2}})
	var got []convSeq
	for range 2 {
		m := recv(t, c)
		got = append(got, convSeq{m.Conversation, m.Seq})
	}
	expectNoMessage(t, c, 50*time.Millisecond)
	if want := []convSeq{{"cnv_a", 3}, {"cnv_b", 1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestAutoAckMovesTheServerCursor(t *testing.T) {
	f := newFake(t)
	c := f.connect(ConnOptions{AutoAck: true})
	for range 3 {
		f.publish("cnv_a", []byte("a"))
	}
	for range 3 {
		recv(t, c)
	}
	eventually(t, "the cursor reaches 3", func() bool { return f.cursor("cnv_a") == 3 })
	f.dropAll(0, "")
	f.nextConn()
	waitSynced(t, c)
	expectNoMessage(t, c, 50*time.Millisecond)
}

func TestAcksAreSentAgainAfterAReconnect(t *testing.T) {
	f := newFake(t)
	c := f.connect(ConnOptions{})
	f.publish("cnv_a", []byte("1"))
	f.publish("cnv_a", []byte("2"))
	recv(t, c)
	recv(t, c)
	ctx := ctxFor(t, time.Second)
	if err := c.Ack(ctx, "cnv_a", 2); err != nil {
		t.Fatal(err)
	}
	if err := c.Ack(ctx, "cnv_a", 1); err != nil { // behind: not sent
		t.Fatal(err)
	}
	eventually(t, "the cursor reaches 2", func() bool { return f.cursor("cnv_a") == 2 })

	// The server lost the ack; the new socket carries it again.
	f.mu.Lock()
	f.cursors["cnv_a"] = 0
	f.mu.Unlock()
	f.dropAll(0, "")
	f.nextConn()
	waitSynced(t, c)
	eventually(t, "the cursor is back at 2", func() bool { return f.cursor("cnv_a") == 2 })
	expectNoMessage(t, c, 50*time.Millisecond) // the replay of 1 and 2 was dropped

	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []fakeAck{{"cnv_a", 2}, {"cnv_a", 2}}; !reflect.DeepEqual(f.acks, want) {
		t.Fatalf("acks %v, want %v", f.acks, want)
	}
}

func TestASlowReaderLosesNothing(t *testing.T) {
	const n = 12
	f := newFake(t)
	c := f.connect(ConnOptions{Buffer: 2})
	for range n {
		f.publish("cnv_a", []byte("m"))
	}
	// The buffer is full; answers to sends still flow.
	if _, err := c.Send(ctxFor(t, 5*time.Second), SendRequest{Conversation: "cnv_b", Ciphertext: []byte("x")}); err != nil {
		t.Fatalf("Send while the buffer is full: %v", err)
	}
	for want := int64(1); want <= n; want++ {
		if m := recv(t, c); m.Seq != want {
			t.Fatalf("got seq %d, want %d", m.Seq, want)
		}
	}
	expectNoMessage(t, c, 100*time.Millisecond)
	if f.attemptCount() < 2 {
		t.Fatal("no resync happened")
	}
}

func TestAResyncStartsFromTheAcksOfTheSocketItLeaves(t *testing.T) {
	// The coalesced acks are written before the Conn closes a socket to
	// resync, so the replay does not send again what was acked.
	f := newFake(t)
	c := f.connect(ConnOptions{Buffer: 2, AutoAck: true, AckInterval: time.Hour})
	for range 6 {
		f.publish("cnv_a", []byte("m"))
	}
	// 1 and 2 fill the buffer, so they are acked before 3 overflows it;
	// A send's answer comes after the six on the socket, so once it is
	// back the reader has handled all six (and overflowed at 3).
	if _, err := c.Send(ctxFor(t, 5*time.Second), SendRequest{Conversation: "cnv_b", Ciphertext: []byte("x")}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	for want := int64(1); want <= 6; want++ {
		if m := recv(t, c); m.Seq != want {
			t.Fatalf("got seq %d, want %d", m.Seq, want)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.replayed) < 2 || len(f.replayed[1]) == 0 || f.replayed[1][0] <= 2 {
		t.Fatalf("replayed per socket %v, want the second socket to start after the acked 2", f.replayed)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	f := newFake(t)
	f.onSend = func(*fakeConn, fakeSend) {} // never answers
	c := f.connect(ConnOptions{})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Send(context.Background(), SendRequest{Conversation: "cnv_1", Ciphertext: []byte("x")})
		errc <- err
	}()
	eventually(t, "the send reaches the server", func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		return len(f.sends) == 1
	})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("pending Send = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Fatalf("Err = %v", c.Err())
	}
	if err := c.Ack(context.Background(), "cnv_1", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ack after Close = %v", err)
	}
	if _, ok := <-c.Messages(); ok {
		t.Fatal("Messages still open")
	}
}

func TestCloseWhileReconnectingReturnsPromptly(t *testing.T) {
	f := newFake(t)
	f.refuse = func(n int) int {
		if n > 1 {
			return 503
		}
		return 0
	}
	c := f.connect(ConnOptions{MinBackoff: 10 * time.Second, MaxBackoff: 10 * time.Second})
	f.dropAll(0, "")
	eventually(t, "the socket is gone", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.ws == nil
	})
	start := time.Now()
	c.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
}

func TestKeepalivePingsDoNotDisturbAHealthySocket(t *testing.T) {
	f := newFake(t)
	c := f.connect(ConnOptions{PingInterval: 10 * time.Millisecond, WriteTimeout: time.Second})
	time.Sleep(150 * time.Millisecond)
	f.publish("cnv_a", []byte("still here"))
	if m := recv(t, c); m.Seq != 1 {
		t.Fatalf("seq %d", m.Seq)
	}
	if n := f.attemptCount(); n != 1 {
		t.Fatalf("%d upgrades, want 1: pings broke the socket", n)
	}
}
