package chat

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LatencyBuckets are the bounds, in milliseconds, of the node's latency
// histograms: fine below the fan-out target (250 ms), coarse past it.
var LatencyBuckets = []float64{0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

// metrics are what the service observes: sends committed and published,
// acks committed, messages read back from the bus. Each Service has its
// own (tests run several nodes in one process); Register puts them in the
// node's registry. Counters are atomics: the per-message cost is an add.
type metrics struct {
	sent        prometheus.Counter
	acks        prometheus.Counter
	ackFailures prometheus.Counter
	received    prometheus.Counter
	busLatency  prometheus.Histogram
	// presence, typing and receipts this node published (issue 19): what
	// to shed first when a node is overloaded (docs/runbook.md).
	presence prometheus.Counter
	typing   prometheus.Counter
	receipts prometheus.Counter
}

func newMetrics() *metrics {
	return &metrics{
		sent: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_messages_sent_total",
			Help: "Messages committed by this node's store and published (each counted once, on the node that took the send)."}),
		acks: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_acks_committed_total",
			Help: "Device cursor moves (acks, coalesced per device and conversation) committed."}),
		ackFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_acks_failed_total",
			Help: "Ack commits the store refused or timed out (those messages are sent again at the next sync)."}),
		received: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_bus_received_total",
			Help: "Stored messages this node read from the bus (from any node, itself included)."}),
		busLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "switchboard_bus_receive_latency_ms",
			Help:    "From the commit on the originating node to this node decoding the message off the bus, in milliseconds.",
			Buckets: LatencyBuckets}),
		presence: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_presence_published_total",
			Help: "Presence changes (online, offline) this node published."}),
		typing: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_typing_published_total",
			Help: "Typing notices (start, stop) this node published."}),
		receipts: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_receipts_published_total",
			Help: "Receipt frames (a user's delivered and read marks in a conversation, coalesced per second) this node published."}),
	}
}

// Register adds the service's metrics to reg, with two gauges read at
// scrape time: whether the store and the bus answer a ping (what the
// "unreachable" alerts watch; a scrape waits at most a second for each).
func (s *Service) Register(reg prometheus.Registerer) error {
	up := func(name, help string, ping func(context.Context) error) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if ping(ctx) != nil {
				return 0
			}
			return 1
		})
	}
	for _, c := range []prometheus.Collector{
		s.metrics.sent, s.metrics.acks, s.metrics.ackFailures, s.metrics.received, s.metrics.busLatency,
		s.metrics.presence, s.metrics.typing, s.metrics.receipts,
		up("switchboard_store_up", "1 when the store (PostgreSQL or SQLite) answered a ping at this scrape, else 0.", s.store.Ping),
		up("switchboard_bus_up", "1 when the bus (Redis, or the in-process bus) answered a ping at this scrape, else 0.", s.bus.Ping),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// received counts a message off the bus and, when its origin stamped it,
// how long it took since the commit. Node clocks must agree (one host, or
// NTP: the error of their offset adds to every cross-node sample).
func (m *metrics) receivedMessage(committed time.Time) {
	m.received.Inc()
	if !committed.IsZero() {
		m.busLatency.Observe(float64(time.Since(committed)) / float64(time.Millisecond))
	}
}
