package load

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config is one `sbload run`. Zero values get the defaults of withDefaults;
// cmd/sbload fills it from flags.
type Config struct {
	Target   string   // base URL of a node or of NGINX: http://127.0.0.1:8080
	Metrics  []string // /metrics URLs of the nodes; default Target + "/metrics"
	Scenario string   // hold, fanout, chat, broadcast

	Conns          int           // sockets (= devices) to connect
	Procs          int           // worker processes
	Ramp           time.Duration // time to open all sockets (0 = as fast as possible)
	Hold           time.Duration // length of the steady phase
	Drain          time.Duration // at most this long after the steady phase for deliveries in flight
	ConnectTimeout time.Duration // a socket not synced this long after its dial is an error
	DialTimeout    time.Duration // TCP connect timeout

	DevicesPerUser  int    // devices logged in per account
	HTTPConcurrency int    // parallel HTTP requests while logging in
	SourceBase      string // first loopback source address; "" = 127.0.0.2 for a loopback target, none otherwise
	ConnsPerSource  int    // sockets per source address
	Pollers         int    // nbio pollers per worker
	Dialers         int    // dialer goroutines per worker

	Out           string        // summary JSON file ("" = none)
	Series        string        // time series JSON lines file ("" = none)
	ProgressEvery time.Duration // progress line interval

	// fanout
	Groups       int           // groups (conversations)
	GroupSize    int           // member users per group
	SendRate     float64       // messages per second per sending device
	Senders      int           // sending devices per group (0 = all)
	PayloadBytes int           // ciphertext size
	AckInterval  time.Duration // how often a device acks what it received (0 = never)
	Pairwise     bool          // one ciphertext per recipient device instead of one shared

	// chat (PayloadBytes as the largest ciphertext, AckInterval too)
	DMs        int           // direct conversations each user starts (so ~2× per user)
	SmallGroup int           // users per small group (0 = none)
	LargeGroup int           // users per large group (0 = none)
	Mix        [3]float64    // weights of direct, small group, large group messages
	ChatRate   float64       // messages per second, the whole run
	Churn      float64       // reconnects per second, the whole run
	Storm      time.Duration // a reconnect storm: this far into the steady phase every device reconnects at once (0 = none)
	PayloadMin int           // smallest ciphertext
	Watch      int           // users each socket watches (presence_subscribe; 0 = none)
	TypingRate float64       // typing starts per second, the whole run (0 = none)

	// broadcast (PayloadBytes too)
	Rounds       int           // broadcasts, one at a time
	RoundTimeout time.Duration // longest wait for one round's last delivery

	// uploads mixed into any scenario's steady phase (uploads.go)
	MediaDir          string  // folder of photos to POST /v1/media ("" = no uploads)
	UploadRate        float64 // uploads per second, the whole run
	UploadConcurrency int     // uploads waiting for their answer at most

	Command    string // the command line, for the summary
	Executable string // the binary to run as `<Executable> worker`; default this one
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Scenario == "" {
		c.Scenario = "hold"
	}
	if c.Procs <= 0 {
		c.Procs = 1
	}
	def(&c.ConnectTimeout, 30*time.Second)
	def(&c.DialTimeout, 10*time.Second)
	def(&c.Drain, 10*time.Second)
	def(&c.ProgressEvery, 5*time.Second)
	if c.DevicesPerUser <= 0 {
		c.DevicesPerUser = 10
	}
	if c.HTTPConcurrency <= 0 {
		c.HTTPConcurrency = 16
	}
	if c.ConnsPerSource <= 0 {
		c.ConnsPerSource = 5000
	}
	if c.Pollers <= 0 {
		c.Pollers = 1
	}
	if c.Dialers <= 0 {
		c.Dialers = 32
	}
	if c.PayloadBytes <= 0 {
		c.PayloadBytes = 200
	}
	if c.SendRate <= 0 {
		c.SendRate = 1
	}
	if c.MediaDir != "" && c.UploadRate <= 0 {
		c.UploadRate = 1
	}
	if c.UploadConcurrency <= 0 {
		c.UploadConcurrency = 4
	}
	c.Target = strings.TrimSuffix(c.Target, "/")
	if len(c.Metrics) == 0 {
		c.Metrics = []string{c.Target + "/metrics"}
	}
	if c.SourceBase == "" && isLoopbackURL(c.Target) {
		c.SourceBase = "127.0.0.2"
	}
	if c.SourceBase == "none" {
		c.SourceBase = ""
	}
	return c
}

func (c Config) validate() error {
	u, err := url.Parse(c.Target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("--target %q: want http://host:port", c.Target)
	}
	if c.Conns <= 0 {
		return fmt.Errorf("--conns must be positive")
	}
	if per := (c.Conns + c.Procs - 1) / c.Procs; per > maxPerWorker {
		return fmt.Errorf("%d sockets per worker is over the %d one process can hold under a 20,000-file limit; raise --procs", per, maxPerWorker)
	}
	return nil
}

// maxPerWorker leaves a worker room for its own files under the 20,000
// hard limit (pipes, epoll, the binary, a dial in flight dups its socket).
const maxPerWorker = 19900

func isLoopbackURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}
