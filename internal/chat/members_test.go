package chat_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
	"github.com/switchboard-chat/switchboard/wire"
)

// TestAppendEvent: the entry point other features (missed calls) use to
// put an event into a conversation. It takes the next seq, reaches every
// member device (the acting one included) live and from the store, and
// changes no member.
func TestAppendEvent(t *testing.T) {
	ctx := context.Background()
	st, bus := sqliteStore(t)
	svc := chat.New(st, bus, chat.Config{Argon2: cheapArgon2})
	alice, bob := loginDevice(t, svc, "alice"), loginDevice(t, svc, "bob")
	conv, err := svc.CreateConversation(ctx, alice, sb.KindDirect, []string{bob.UserID}, "")
	if err != nil {
		t.Fatal(err)
	}
	live := make(chan *sb.Message, 1)
	cancel, err := svc.Subscribe(chat.Live{Message: func(m *sb.Message) { live <- m }, Control: func(*chat.Control) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	// The node receives only the conversations it holds (interest.go).
	if in := svc.Interest(); in != nil {
		if fresh, wait := in.Hold([]string{conv}); fresh {
			if err := wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}

	seq, err := svc.AppendEvent(ctx, alice, conv, wire.Event{Kind: wire.EventCallMissed, UserID: bob.UserID, By: alice.UserID, CallID: "call_1"})
	if err != nil || seq != 1 {
		t.Fatalf("AppendEvent = %d, %v; want seq 1", seq, err)
	}
	m := <-live
	var ev wire.Event
	if err := json.Unmarshal(m.Event, &ev); err != nil || ev.Kind != wire.EventCallMissed || ev.CallID != "call_1" || m.Seq != 1 {
		t.Fatalf("published %+v (event %s, %v)", m, m.Event, err)
	}
	for _, d := range []string{alice.DeviceID, bob.DeviceID} {
		if _, ok := m.Ciphertexts[d]; !ok {
			t.Fatalf("recipients %v miss %s", m.Ciphertexts, d)
		}
	}
	got, err := svc.Messages(ctx, bob, conv, 0, 10)
	if err != nil || len(got) != 1 || got[0].Event == nil || got[0].Ciphertext != nil {
		t.Fatalf("bob reads %+v, %v; want the event", got, err)
	}
	c, err := st.Conversation(ctx, conv)
	if err != nil || !slices.Equal(c.Members, []string{min(alice.UserID, bob.UserID), max(alice.UserID, bob.UserID)}) {
		t.Fatalf("members %v, %v: want alice and bob still", c.Members, err)
	}
	if _, err := svc.AppendEvent(ctx, alice, "cnv_nope", wire.Event{Kind: wire.EventCallMissed}); sb.ErrorCode(err) != wire.CodeNoSuchConversation {
		t.Fatalf("an unknown conversation: %v", err)
	}
}
