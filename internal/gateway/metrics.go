package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchboard-chat/switchboard/wire"
)

// closeCounts counts the close frames the gateway sends, by code. The
// children are made once, for wire.CloseCodes and "other", so that a close
// costs a map read and an atomic add, and the label has a bounded set of
// values whatever a caller passes.
type closeCounts struct {
	vec    *prometheus.CounterVec
	byCode map[int]prometheus.Counter // read-only after newCloseCounts
	other  prometheus.Counter
}

func newCloseCounts() *closeCounts {
	c := &closeCounts{
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_ws_closes_total",
			Help: "Close frames this node sent, by close code (wire/close.go; 4008 slow consumer, 1008 policy, 1001 going away...)."},
			[]string{"code"}),
		byCode: make(map[int]prometheus.Counter, len(wire.CloseCodes)),
	}
	for _, code := range wire.CloseCodes {
		c.byCode[code] = c.vec.WithLabelValues(strconv.Itoa(code))
	}
	c.other = c.vec.WithLabelValues("other")
	return c
}

func (c *closeCounts) add(code int) {
	if n, ok := c.byCode[code]; ok {
		n.Inc()
		return
	}
	c.other.Inc()
}

// Register adds the gateway's metrics to reg: the sockets open and the
// close frames sent by code.
func (s *Server) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "switchboard_ws_connections",
			Help: "WebSocket connections open on this node."}, func() float64 { return float64(s.Count()) }),
		s.closes.vec,
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
