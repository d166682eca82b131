package redisstate

import "github.com/prometheus/client_golang/prometheus"

// Register adds the state's metrics to reg.
func (s *State) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "switchboard_redis_state_calls_total",
			Help: "Calls to Redis for limits and the session cache (a limit decision, a cache lookup: one each)."},
			func() float64 { return float64(s.calls.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "switchboard_redis_state_errors_total",
			Help: "Calls to Redis for limits and the session cache that failed or timed out."},
			func() float64 { return float64(s.errors.Load()) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
