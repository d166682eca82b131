package chat_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// wrappedStore decorates a store as a test or a metrics layer would: it
// overrides AppendMessage and forwards the rest through the embedded Store.
type wrappedStore struct {
	sb.Store
	bus *countingBus
	// publishedAtReturn is how many messages had been published when the
	// last AppendMessage returned.
	publishedAtReturn atomic.Int32
	appends           atomic.Int32
}

var _ sb.Store = (*wrappedStore)(nil)

func (w *wrappedStore) AppendMessage(ctx context.Context, m *sb.Message) (*sb.Message, bool, error) {
	w.appends.Add(1)
	stored, dup, err := w.Store.AppendMessage(ctx, m)
	w.publishedAtReturn.Store(w.bus.published.Load())
	return stored, dup, err
}

// countingBus counts the publishes of a bus.
type countingBus struct {
	sb.Bus
	published atomic.Int32
}

func (b *countingBus) Publish(ctx context.Context, topic string, data []byte) error {
	b.published.Add(1)
	return b.Bus.Publish(ctx, topic, data)
}

func TestAWrappedStoreKeepsTheCommitObserverAndAsyncAppends(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (*chat.Service, *wrappedStore, chat.Identity, string) {
		st, inner := sqliteStore(t)
		bus := &countingBus{Bus: inner}
		w := &wrappedStore{Store: st, bus: bus}
		svc := chat.New(w, bus, chat.Config{Argon2: cheapArgon2})
		alice, bob := loginDevice(t, svc, "alice"), loginDevice(t, svc, "bob")
		conv, err := svc.CreateConversation(ctx, alice, "group", []string{bob.UserID}, "g")
		if err != nil {
			t.Fatal(err)
		}
		return svc, w, alice, conv
	}

	t.Run("a send through the wrapper is published by the store's committer, before AppendMessage returns", func(t *testing.T) {
		svc, w, alice, conv := setup(t)
		before := w.bus.published.Load() // the conversation's creation publishes too
		if _, _, err := svc.Send(ctx, alice, &chat.SendRequest{ClientID: "m1", ConversationID: conv, Ciphertext: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if got := w.publishedAtReturn.Load() - before; got != 1 {
			t.Fatalf("%d messages published when AppendMessage returned, want 1: the wrapper hid the commit observer and the send was published after its commit, out of seq order with concurrent sends", got)
		}
	})

	t.Run("an async send through the wrapper is queued, not appended by a blocking AppendMessage", func(t *testing.T) {
		svc, w, alice, conv := setup(t)
		var wg sync.WaitGroup
		wg.Add(1)
		var sendErr error
		svc.SendAsync(ctx, alice, &chat.SendRequest{ClientID: "m1", ConversationID: conv, Ciphertext: []byte("x")},
			func(_ *sb.Message, _ bool, err error) { sendErr = err; wg.Done() })
		wg.Wait()
		if sendErr != nil {
			t.Fatal(sendErr)
		}
		if n := w.appends.Load(); n != 0 {
			t.Fatalf("SendAsync called AppendMessage %d times: the wrapper hid AppendMessageAsync", n)
		}
	})
}
