package calls_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/calls"
	"github.com/switchboard-chat/switchboard/internal/inmem"
	"github.com/switchboard-chat/switchboard/wire"
)

// clock is a fake clock: timers fire only when a test advances it.
type clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newClock() *clock { return &clock{now: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// advance moves the clock and runs the timers due, in order.
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			due = append(due, t)
			return true
		}
		return t.stopped
	})
	c.mu.Unlock()
	slices.SortFunc(due, func(a, b *fakeTimer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.f()
	}
}

// directory is a fake Directory: conversations by id, devices by user.
type directory struct {
	convs   map[string][]string // members; more than two is a group
	devices map[string][]string
}

func (d *directory) CallPeer(_ context.Context, userID, convID string) (string, []string, error) {
	members, ok := d.convs[convID]
	switch {
	case !ok:
		return "", nil, sb.Errorf(sb.ENOTFOUND, wire.CodeNoSuchConversation, "no such conversation")
	case !slices.Contains(members, userID):
		return "", nil, sb.Errorf(sb.EFORBIDDEN, wire.CodeNotMember, "not a member")
	case len(members) != 2:
		return "", nil, sb.Errorf(sb.EINVALID, wire.CodeNotSupported, "group calls are not supported")
	}
	peer := members[0]
	if peer == userID {
		peer = members[1]
	}
	return peer, d.devices[peer], nil
}

// missedLog is a fake MissedRecorder.
type missedLog struct {
	mu   sync.Mutex
	seen []string
}

func (m *missedLog) RecordMissed(_ context.Context, conv, callID string, caller calls.Party, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen = append(m.seen, conv+"/"+callID+"/"+caller.User)
	return nil
}

func (m *missedLog) list() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.seen)
}

// world is two nodes sharing a KV and a bus, with alice (device a1) and
// bob (devices b1, b2) in a direct conversation "dm" and a group "grp".
type world struct {
	t      *testing.T
	clock  *clock
	kv     *calls.MemoryKV
	nodes  []*node
	missed *missedLog
}

// node is one node's signalling and its local sockets.
type node struct {
	svc   *calls.Service
	mu    sync.Mutex
	local map[string]chan wire.Call // device -> what its socket received
}

func newWorld(t *testing.T, nodes int) *world {
	w := &world{t: t, clock: newClock(), missed: &missedLog{}}
	w.kv = &calls.MemoryKV{Now: w.clock.Now}
	bus := &inmem.Bus{}
	t.Cleanup(func() { bus.Close() })
	dir := &directory{
		convs:   map[string][]string{"dm": {"alice", "bob"}, "grp": {"alice", "bob", "carol"}},
		devices: map[string][]string{"alice": {"a1"}, "bob": {"b1", "b2"}, "carol": {"c1"}},
	}
	for range nodes {
		n := &node{local: map[string]chan wire.Call{}}
		n.svc = calls.New(dir, w.kv, bus, calls.Config{RingTimeout: 45 * time.Second, ReconnectGrace: 10 * time.Second,
			Missed: w.missed, Now: w.clock.Now, AfterFunc: w.clock.AfterFunc})
		cancel, err := n.svc.Subscribe(func(device string, frame []byte) bool {
			n.mu.Lock()
			ch := n.local[device]
			n.mu.Unlock()
			if ch == nil {
				return false
			}
			var f wire.Call
			if err := json.Unmarshal(frame, &f); err != nil {
				t.Errorf("undecodable call frame %s: %v", frame, err)
			}
			ch <- f
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); n.svc.Close() })
		w.nodes = append(w.nodes, n)
	}
	return w
}

// device is one device's socket on a node.
type device struct {
	w      *world
	n      *node
	party  calls.Party
	opened int64
	got    chan wire.Call
}

var owners = map[string]string{"a1": "alice", "b1": "bob", "b2": "bob", "c1": "carol"}

// connect opens a socket of a device on node i.
func (w *world) connect(id string, i int) *device {
	n := w.nodes[i]
	d := &device{w: w, n: n, party: calls.Party{User: owners[id], Device: id}, opened: w.clock.Now().UnixNano(), got: make(chan wire.Call, 64)}
	n.mu.Lock()
	n.local[id] = d.got
	n.mu.Unlock()
	n.svc.Connected(id, d.opened)
	w.clock.advance(time.Millisecond) // each socket opens at its own time
	return d
}

// disconnect closes d's socket.
func (d *device) disconnect() {
	d.n.mu.Lock()
	delete(d.n.local, d.party.Device)
	d.n.mu.Unlock()
	d.n.svc.Disconnected(d.party.Device, d.opened)
}

// do sends a call frame from d and returns the service's answer.
func (d *device) do(action, conv, callID, to, payload string) error {
	f := &wire.Call{Type: wire.TypeCall, CallID: callID, Conversation: conv, Action: action, ToDevice: to}
	if payload != "" {
		f.Payload = json.RawMessage(payload)
	}
	return d.n.svc.Handle(context.Background(), d.party, d.opened, f)
}

// must is do that fails the test on an error.
func (d *device) must(action, conv, callID, to, payload string) {
	d.w.t.Helper()
	if err := d.do(action, conv, callID, to, payload); err != nil {
		d.w.t.Fatalf("%s %s from %s: %v", action, callID, d.party.Device, err)
	}
}

// expect waits for d's next frame and checks its action and sender device.
func (d *device) expect(action, fromDevice string) wire.Call {
	d.w.t.Helper()
	select {
	case f := <-d.got:
		from := ""
		if f.From != nil {
			from = f.From.DeviceID
		}
		if f.Action != action || from != fromDevice {
			d.w.t.Fatalf("%s got %s from %q, want %s from %q (%+v)", d.party.Device, f.Action, from, action, fromDevice, f)
		}
		return f
	case <-time.After(20 * time.Second):
		d.w.t.Fatalf("%s got no %s within 20 s", d.party.Device, action)
	}
	return wire.Call{}
}

// quiet checks that d received nothing more once the bus is drained.
func (d *device) quiet() {
	d.w.t.Helper()
	d.w.drain()
	select {
	case f := <-d.got:
		d.w.t.Fatalf("%s got an unexpected %s: %+v", d.party.Device, f.Action, f)
	default:
	}
}

// drain waits until every event published so far was delivered: a marker
// sent through the bus after them comes back to each node.
func (w *world) drain() {
	w.t.Helper()
	for i, n := range w.nodes {
		id := fmt.Sprintf("marker-%d-%d", i, time.Now().UnixNano())
		ch := make(chan wire.Call, 1)
		n.mu.Lock()
		n.local[id] = ch
		n.mu.Unlock()
		n.svc.Publish(context.Background(), "dm", id)
		select {
		case <-ch:
		case <-time.After(20 * time.Second):
			w.t.Fatal("the bus did not deliver a marker within 20 s")
		}
		n.mu.Lock()
		delete(n.local, id)
		n.mu.Unlock()
	}
}

// code is the wire code of err, or "".
func code(err error) string {
	if e, ok := err.(*sb.Error); ok {
		return e.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}
