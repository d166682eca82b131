package calls_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/switchboard-chat/switchboard/internal/calls"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/wire"
)

// BenchmarkCallCycle: one call's invite, accept, one signal each way and
// end on a node alone (memory KV, in-process bus, nobody listening): the
// node's own cost of signalling a call, without the sockets.
func BenchmarkCallCycle(b *testing.B) {
	bus := &inmem.Bus{}
	defer bus.Close()
	dir := &directory{convs: map[string][]string{"dm": {"alice", "bob"}}, devices: map[string][]string{"bob": {"b1", "b2"}}}
	svc := calls.New(dir, &calls.MemoryKV{}, bus, calls.Config{})
	defer svc.Close()
	cancel, err := svc.Subscribe(func(string, []byte) bool { return false })
	if err != nil {
		b.Fatal(err)
	}
	defer cancel()
	ctx := context.Background()
	a, bb := calls.Party{User: "alice", Device: "a1"}, calls.Party{User: "bob", Device: "b1"}
	do := func(p calls.Party, action, id, to string) {
		f := &wire.Call{Type: wire.TypeCall, CallID: id, Conversation: "dm", Action: action, ToDevice: to}
		if err := svc.Handle(ctx, p, 1, f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for i := range b.N {
		id := fmt.Sprint("c", i)
		do(a, wire.CallInvite, id, "")
		do(bb, wire.CallAccept, id, "")
		do(a, wire.CallSignal, id, "b1")
		do(bb, wire.CallSignal, id, "a1")
		do(a, wire.CallEnd, id, "")
	}
}
