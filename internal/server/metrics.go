package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metricsHandler serves this node's registry. Each Server has its own, so
// tests can run several nodes in one process.
func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchboard_sockets_open", Help: "WebSocket connections open on this node.",
		}, func() float64 { return float64(s.gw.Count()) }),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
