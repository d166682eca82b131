package redisbus

import "github.com/prometheus/client_golang/prometheus"

// Register adds the bus's counters to reg (the node's registry, served at
// /metrics): the bus observes them, so it names them; the node's HTTP edge
// only serves the registry.
func (b *Bus) Register(reg prometheus.Registerer) error {
	counter := func(name, help string, v func(Stats) int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(v(b.Stats())) })
	}
	for _, c := range []prometheus.Collector{
		counter("switchboard_bus_published_total", "Publishes Redis took.",
			func(s Stats) int64 { return s.Published }),
		counter("switchboard_bus_dropped_total", "Publishes lost: refused by Redis, or past the bound kept while Redis was unreachable (online devices get them from the store when the subscription is back).",
			func(s Stats) int64 { return s.Dropped }),
		counter("switchboard_bus_pipelines_total", "Round trips that carried the publishes (pipelined).",
			func(s Stats) int64 { return s.Pipelines }),
		counter("switchboard_bus_retried_total", "Publishes sent again after Redis could not take them.",
			func(s Stats) int64 { return s.Retried }),
		counter("switchboard_bus_resubscribed_total", "Subscriptions made again after the connection to Redis was lost.",
			func(s Stats) int64 { return s.Resubscribed }),
		counter("switchboard_bus_topic_messages_total", "Messages this node received on the exact conversation topics it subscribes to (interest-based fan-out: only conversations with a member socket here).",
			func(s Stats) int64 { return s.Received }),
		counter("switchboard_bus_subscribe_commands_total", "SUBSCRIBE/SSUBSCRIBE commands sent, each carrying up to 1,000 topics added since the last round trip.",
			func(s Stats) int64 { return s.SubscribeCmds }),
		counter("switchboard_bus_unsubscribe_commands_total", "UNSUBSCRIBE/SUNSUBSCRIBE commands sent.",
			func(s Stats) int64 { return s.UnsubscribeCmds }),
		counter("switchboard_bus_subscribe_errors_total", "Subscribe commands that failed (the connection is made again and every topic subscribed again).",
			func(s Stats) int64 { return s.SubscribeErrors }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "switchboard_bus_topics",
			Help: "Exact topics (conversations) this node subscribes to."},
			func() float64 { return float64(b.Stats().Topics) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "switchboard_bus_waiting",
			Help: "Publishes kept until Redis answers again."},
			func() float64 { return float64(b.Stats().Waiting) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
