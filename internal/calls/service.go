package calls

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"sync"
	"time"

	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/wire"
)

// Directory is what calls needs to know of conversations and devices
// (chat.Service has it, cached).
type Directory interface {
	// CallPeer checks that userID may call in convID (a member, not blocked
	// by the other) and returns the other member and their active devices.
	// A group is an error with code not_supported.
	CallPeer(ctx context.Context, userID, convID string) (peer string, devices []string, err error)
}

// MissedRecorder stores a missed call as an event in its conversation
// (call_missed), so that a callee who was offline sees it: a node stores
// it with chat's AppendEvent (cmd/switchboard).
type MissedRecorder interface {
	RecordMissed(ctx context.Context, conv, callID string, caller Party, callee string) error
}

// Config is the signalling's settings; zero values get the defaults in brackets.
type Config struct {
	RingTimeout    time.Duration // an invite nobody answers is missed after this [45 s]
	ReconnectGrace time.Duration // a party's device gone this long ends the call [10 s]
	// CallTTL bounds how long an answered call's record lives without a
	// change: what is left of a call whose parties' nodes both died [12 h].
	CallTTL time.Duration
	Missed  MissedRecorder // where missed calls are stored [nowhere: logged]
	Logger  *slog.Logger
	Now     func() time.Time
	// AfterFunc arms a timer (tests drive a fake clock) [time.AfterFunc].
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
}

func (c *Config) setDefaults() {
	if c.RingTimeout == 0 {
		c.RingTimeout = 45 * time.Second
	}
	if c.ReconnectGrace == 0 {
		c.ReconnectGrace = 10 * time.Second
	}
	if c.CallTTL == 0 {
		c.CallTTL = 12 * time.Hour
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.AfterFunc == nil {
		c.AfterFunc = func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }
	}
}

// TopicPrefix is the bus topic prefix of call events: call.<conversation>,
// so that one conversation's frames keep their order.
const TopicPrefix = "call."

// Service runs call signalling on one node.
type Service struct {
	cfg Config
	dir Directory
	kv  KV
	bus sb.Bus

	ctx    context.Context // ends at Close: stops timers' work
	cancel context.CancelFunc
	timers sync.WaitGroup

	mu      sync.Mutex
	deliver func(device string, frame []byte) bool
	// local is, per device with a socket on this node, the records of the
	// calls it takes part in: what a socket's close looks at.
	local map[string]map[string]struct{}
	stops map[*timer]struct{}

	events prometheus.Counter // call events published (Register)
}

type timer struct{ stop func() bool }

// New returns the signalling over a directory, a KV for the call records and the bus.
func New(dir Directory, kv KV, bus sb.Bus, cfg Config) *Service {
	cfg.setDefaults()
	s := &Service{cfg: cfg, dir: dir, kv: kv, bus: bus, local: make(map[string]map[string]struct{}),
		stops: make(map[*timer]struct{}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_call_events_total",
			Help: "Call events (an invite, accept, signal, end, missed...) this node published to the parties' devices."})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// ringTTL is how long a ringing call's record lives: past the ring timeout,
// so that a timer finds it, but not forever if every timer's node died.
func (s *Service) ringTTL() time.Duration { return s.cfg.RingTimeout + time.Minute }

// envelope is a call event on the bus: a frame for some devices, on
// whichever node holds them.
type envelope struct {
	To    []string        `json:"to"`
	Frame json.RawMessage `json:"frame"`
	// Ring is set on an invite: the record's key and when it is missed, so
	// that each ringing device's node arms the ring timeout too.
	Ring      string `json:"ring,omitempty"`
	RingUntil int64  `json:"ring_until,omitempty"`
	// Done names the record of a call that ended: the nodes of To forget it.
	Done string `json:"done,omitempty"`
}

// Subscribe relays call events from the bus to the node's sockets:
// deliver writes a frame to the local socket of a device and reports
// whether there is one. It returns once the subscription is live.
func (s *Service) Subscribe(deliver func(device string, frame []byte) bool) (cancel func(), err error) {
	s.mu.Lock()
	s.deliver = deliver
	s.mu.Unlock()
	unsub, err := s.bus.Subscribe(TopicPrefix, func(_ string, data []byte) { s.onBus(data) }, nil)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", TopicPrefix, err)
	}
	return unsub, nil
}

func (s *Service) onBus(data []byte) {
	var e envelope
	if err := json.Unmarshal(data, &e); err != nil {
		s.cfg.Logger.Error("bad call event", "err", err)
		return
	}
	s.mu.Lock()
	deliver := s.deliver
	s.mu.Unlock()
	here := false
	for _, d := range e.To {
		if deliver != nil && deliver(d, e.Frame) {
			here = true
			if e.Done != "" {
				s.forget(d, e.Done)
			}
		}
	}
	if here && e.Ring != "" {
		s.armRing(e.Ring, time.UnixMilli(e.RingUntil))
	}
}

// publish sends frame to devices on every node.
func (s *Service) publish(ctx context.Context, r *record, action string, from Party, payload json.RawMessage, to []string, e envelope) {
	if len(to) == 0 {
		return
	}
	f := wire.Call{Type: wire.TypeCall, CallID: r.ID, Conversation: r.Conv, Action: action, Payload: payload}
	if from.User != "" {
		f.From = &wire.Sender{UserID: from.User, DeviceID: from.Device}
	}
	var err error
	if e.Frame, err = json.Marshal(f); err != nil {
		s.cfg.Logger.Error("encode call frame", "err", err)
		return
	}
	e.To = to
	data, err := json.Marshal(e)
	if err == nil {
		err = s.bus.Publish(ctx, TopicPrefix+r.Conv, data)
	}
	if err != nil {
		// The parties see nothing of this event; the timeouts still end the call.
		s.cfg.Logger.Warn("call event not published", "call", r.ID, "action", action, "err", err)
		return
	}
	s.events.Inc()
}

// Register adds the signalling's metrics to reg (the node's registry).
func (s *Service) Register(reg prometheus.Registerer) error { return reg.Register(s.events) }

// remember notes that a local device takes part in the call at key.
func (s *Service) remember(device, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set := s.local[device]
	if set == nil {
		set = make(map[string]struct{})
		s.local[device] = set
	}
	set[key] = struct{}{}
}

// forget drops what remember noted.
func (s *Service) forget(device, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if set := s.local[device]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(s.local, device)
		}
	}
}

// localCalls returns the records a local device takes part in.
func (s *Service) localCalls(device string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k := range s.local[device] {
		keys = append(keys, k)
	}
	return keys
}

// after runs f after d unless the service closes first.
func (s *Service) after(d time.Duration, f func()) {
	t := &timer{}
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		return
	}
	s.stops[t] = struct{}{}
	s.timers.Add(1)
	s.mu.Unlock()
	t.stop = s.cfg.AfterFunc(max(d, 0), func() {
		defer s.timers.Done()
		s.mu.Lock()
		_, live := s.stops[t]
		delete(s.stops, t)
		s.mu.Unlock()
		if live {
			f()
		}
	})
}

// Close stops the timers: the records stay, and the other nodes' timers
// (or the records' TTLs) end what this node's would have.
func (s *Service) Close() {
	s.mu.Lock()
	s.cancel()
	stops := s.stops
	s.stops = make(map[*timer]struct{})
	s.mu.Unlock()
	for t := range stops {
		if t.stop != nil && t.stop() {
			s.timers.Done()
		}
	}
	s.timers.Wait()
}

// LocalDevices is how many local devices take part in a call (tests, metrics).
func (s *Service) LocalDevices() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.local)
}
