package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsHandler serves this node's registry: Config.Metrics, where the
// adapters registered their own collectors, or a new one. Each Server has
// its own, so tests can run several nodes in one process.
func (s *Server) metricsHandler() http.Handler {
	reg := s.cfg.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(s.fanoutCollectors()...)
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchboard_sockets_open", Help: "WebSocket connections open on this node.",
		}, func() float64 { return float64(s.gw.Count()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "switchboard_bus_gaps_total", Help: "Gaps in a conversation's seqs that no publish filled within a second, read from the store instead.",
		}, func() float64 { return float64(s.hub.gaps.Load()) }),
	)
	// Uncompressed: the page is a few KB, and promhttp keeps a gzip writer
	// (~650 KB of flate state) alive per concurrent scrape, which at 5,000
	// idle sockets was a fifth of the node's heap growth.
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{DisableCompression: true})
}
