package server

import (
	"net/http"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	sb "github.com/switchboard-chat/switchboard"
	"github.com/switchboard-chat/switchboard/internal/chat"
)

// errorKinds are the values of errors_total's kind label: the error kinds
// of the root package, a bounded set.
var errorKinds = []string{sb.EINVALID, sb.EUNAUTHORIZED, sb.EFORBIDDEN, sb.ENOTFOUND, sb.EMETHOD,
	sb.ECONFLICT, sb.ETOOLARGE, sb.ERATELIMIT, sb.EUNAVAILABLE, sb.EINTERNAL}

// metrics are what the edge and the hub observe. Every label value is made
// here, from a fixed list, so a request costs a map read and an atomic add
// and no client can grow the series (never a user, device or conversation).
type metrics struct {
	delivered prometheus.Counter
	fanOut    prometheus.Histogram
	held      prometheus.Histogram // sequencer waits (sequence.go)
	backlog   prometheus.Histogram
	refused   prometheus.Counter // upgrades refused because the node is full (--max-conns)
	errorsVec *prometheus.CounterVec
	errors    map[string]prometheus.Counter // by kind; read-only after newMetrics
	reqVec    *prometheus.CounterVec
	reqHTTP   prometheus.Counter
	reqWS     prometheus.Counter
	usage     *usage // CPU and memory per connection, from the node's start

	handlerOnce sync.Once
	handler     http.Handler // /metrics, made at the first scrape
}

func newMetrics() *metrics {
	m := &metrics{
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_messages_delivered_total",
			Help: "Message frames handed to local sockets: live (fan-out) and replayed by syncs."}),
		fanOut: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "switchboard_message_fan_out_latency_ms",
			Help:    "From the commit on the originating node to the message's frame queued on this node's last local recipient socket, per message and node, in milliseconds.",
			Buckets: chat.LatencyBuckets}),
		held: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "switchboard_sequencer_hold_ms",
			Help:    "How long a message that came off the bus past a gap in its conversation's seqs waited for the seqs before it (another node's publishes, or the store after a second), from its arrival to its delivery, in milliseconds.",
			Buckets: chat.LatencyBuckets}),
		backlog: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "switchboard_sync_backlog_messages",
			Help:    "Messages replayed by one socket's sync (its backlog when it connected).",
			Buckets: []float64{0, 1, 10, 100, 1000, 10000, 100000}}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_ws_refused_total",
			Help: "WebSocket upgrades answered 503 because the node holds --max-conns sockets."}),
		errorsVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_errors_total",
			Help: "Errors answered (HTTP problems and socket error frames), by kind (the status class: invalid, unauthorized, ..., unavailable, internal)."},
			[]string{"kind"}),
		errors: make(map[string]prometheus.Counter, len(errorKinds)),
		usage:  newUsage(),
		reqVec: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_requests_total",
			Help: "HTTP requests and client WebSocket frames handled (the denominator of the error ratio)."},
			[]string{"via"}),
	}
	for _, k := range errorKinds {
		m.errors[k] = m.errorsVec.WithLabelValues(k)
	}
	m.reqHTTP, m.reqWS = m.reqVec.WithLabelValues("http"), m.reqVec.WithLabelValues("ws")
	return m
}

func (m *metrics) error(kind string) {
	c, ok := m.errors[kind]
	if !ok {
		c = m.errors[sb.EINTERNAL]
	}
	c.Inc()
}

// kindOfStatus is statusOf (problem.go) the other way round, for the
// answers the HTTP counter sees only as a status.
func kindOfStatus(status int) string {
	for k, st := range statusOf {
		if st == status {
			return k
		}
	}
	return sb.EINTERNAL
}

// countHTTP counts each HTTP request (socket upgrades included) and, for a
// status of 400 or more, an error of its kind. statusWriter unwraps for the
// upgrade, which hijacks the connection (status 0 then).
func (s *Server) countHTTP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.metrics.reqHTTP.Inc()
		sw := &statusWriter{ResponseWriter: w} // security.go's
		next.ServeHTTP(sw, r)
		if sw.status >= 400 {
			s.metrics.error(kindOfStatus(sw.status))
		}
	})
}

// serveMetrics is /metrics. The registry is filled at the first scrape, not
// when the route table is read (tests read it of servers never started).
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	s.metrics.handlerOnce.Do(func() { s.metrics.handler = s.metricsHandler() })
	s.metrics.handler.ServeHTTP(w, r)
}

// metricsHandler serves this node's registry: Config.Metrics, where the
// adapters registered their own collectors, or a new one. Each Server has
// its own, so tests can run several nodes in one process.
func (s *Server) metricsHandler() http.Handler {
	reg := s.cfg.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	usage := s.metrics.usage
	reg.MustRegister(s.fanoutCollectors()...)
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		s.metrics.delivered, s.metrics.fanOut, s.metrics.held, s.metrics.backlog, s.metrics.refused,
		s.metrics.errorsVec, s.metrics.reqVec,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "switchboard_bus_gaps_total", Help: "Gaps in a conversation's seqs that no publish filled within a second, read from the store instead.",
		}, func() float64 { return float64(s.hub.gaps.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "switchboard_bus_resumes_total", Help: "Catch-ups from the store after the bus subscription was lost and came back.",
		}, func() float64 { return float64(s.hub.resumes.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchboard_max_connections", Help: "The node's --max-conns (0: no limit).",
		}, func() float64 { return float64(s.cfg.MaxConns) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchboard_cpu_usage_percent", Help: "CPU time used by this process over the interval since the previous scrape (at least 1 s), as a percentage of all the host's cores.",
		}, usage.cpuPercent),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchboard_memory_per_connection_bytes", Help: "(Resident memory now - resident memory when the node started) / open sockets; 0 without sockets. What a socket costs, fixed costs included (docs/benchmarks.md).",
		}, func() float64 { return usage.memoryPerConn(s.gw.Count()) }),
	)
	if err := s.gw.Register(reg); err != nil {
		panic(err) // two registrations of one server: a bug
	}
	if err := s.svc.Register(reg); err != nil {
		panic(err)
	}
	// Uncompressed: the page is a few KB, and promhttp keeps a gzip writer
	// (~650 KB of flate state) alive per concurrent scrape, which at 5,000
	// idle sockets was a fifth of the node's heap growth.
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{DisableCompression: true})
}

// usage computes the node's CPU and memory gauges at scrape time, from
// getrusage and /proc/self/statm: nothing runs between scrapes.
type usage struct {
	baseRSS float64 // at start, before any socket

	mu       sync.Mutex
	lastWall time.Time
	lastCPU  time.Duration
	percent  float64
}

func newUsage() *usage {
	return &usage{baseRSS: rss(), lastWall: time.Now(), lastCPU: cpuTime()}
}

func (u *usage) cpuPercent() float64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now()
	wall := now.Sub(u.lastWall)
	if wall < time.Second { // a second scraper, or a quick retry: keep the last figure
		return u.percent
	}
	cpu := cpuTime()
	u.percent = 100 * float64(cpu-u.lastCPU) / float64(wall) / float64(runtime.NumCPU())
	u.lastWall, u.lastCPU = now, cpu
	return u.percent
}

func (u *usage) memoryPerConn(conns int) float64 {
	if conns == 0 {
		return 0
	}
	return max(rss()-u.baseRSS, 0) / float64(conns)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss is the process's resident memory in bytes (Linux; 0 elsewhere).
func rss() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	// "size resident shared ...", in pages: the second field.
	var resident int64
	for i, field := 0, 0; i < len(b) && field < 2; i++ {
		switch c := b[i]; {
		case c == ' ':
			field++
		case field == 1 && c >= '0' && c <= '9':
			resident = resident*10 + int64(c-'0')
		}
	}
	return float64(resident * int64(os.Getpagesize()))
}

// fannedOut counts the n local sockets m was handed to and, when its origin
// stamped its commit time, how long that took (node clocks must agree: on
// one host they do; across hosts NTP's offset adds to cross-node samples).
// One observation per message and node, taken once the last local socket
// has it queued: the per-message cost is a clock read and a few atomics.
func (m *metrics) fannedOut(msg *sb.Message, n int) {
	if n == 0 {
		return
	}
	m.delivered.Add(float64(n))
	if !msg.Committed.IsZero() {
		m.fanOut.Observe(float64(time.Since(msg.Committed)) / float64(time.Millisecond))
	}
}

// replayed counts a sync's replay.
func (m *metrics) replayed(n int) {
	m.backlog.Observe(float64(n))
	m.delivered.Add(float64(n))
}
