package postgres

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// registerPools adds to reg (Register) the statements run per pool
// (primary, replica-0, ...), each replica's health and lag, and the reads
// that could have gone to a replica but went to the primary.
func (s *Store) registerPools(reg prometheus.Registerer) error {
	pool := func(name string, n *queryCounter) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "switchboard_db_queries_total",
			Help:        "Statements run on a PostgreSQL pool (primary, replica-N), health checks excepted.",
			ConstLabels: prometheus.Labels{"pool": name}}, func() float64 { return float64(n.n.Load()) })
	}
	cs := []prometheus.Collector{pool("primary", &s.queries)}
	if rs := s.replicas; rs != nil {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "switchboard_db_replica_fallbacks_total",
			Help: "Reads that may lag but were served by the primary: no replica healthy, none had this node's own write, or one failed or was behind."},
			func() float64 { return float64(rs.fallbacks.Load()) }))
		for _, r := range rs.list {
			labels := prometheus.Labels{"pool": r.name}
			cs = append(cs, pool(r.name, &r.queries),
				prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "switchboard_db_replica_healthy", ConstLabels: labels,
					Help: "1 while a replica answers its checks within --replica-max-lag of the primary, else 0."},
					func() float64 {
						if r.healthy.Load() {
							return 1
						}
						return 0
					}),
				prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "switchboard_db_replica_lag_seconds", ConstLabels: labels,
					Help: "How far behind the primary a replica was at its last answered check (WAL positions)."},
					func() float64 { return time.Duration(r.lag.Load()).Seconds() }))
		}
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
