package load

import (
	"encoding/json"
	"os"
	"time"
)

// Summary is the JSON a run writes to --out. Counts are sockets; latencies
// are milliseconds; memory is bytes.
type Summary struct {
	Scenario string    `json:"scenario"`
	Date     time.Time `json:"date"`
	Command  string    `json:"command"`
	Machine  Machine   `json:"machine"`
	Target   string    `json:"target"`
	Params   Params    `json:"params"`

	Conns       ConnCounts        `json:"conns"`
	Errors      map[string]int64  `json:"errors"`
	ErrorsTotal int64             `json:"errors_total"`
	ErrorSample map[string]string `json:"error_samples,omitempty"`

	// ConnectLatency is from the start of the TCP dial to the synced frame:
	// connect, upgrade, token check, device load and (empty) backlog.
	ConnectLatency Latency `json:"connect_latency"`
	// UpgradeLatency is from the start of the dial to the 101 answer.
	UpgradeLatency Latency `json:"upgrade_latency"`
	TCPLatency     Latency `json:"tcp_connect_latency"`

	Server  ServerSummary  `json:"server"`
	Phases  Phases         `json:"phases"`
	LoadGen LoadGenSummary `json:"load_generator"`

	Fanout    *FanoutSummary    `json:"fanout,omitempty"`
	Chat      *ChatSummary      `json:"chat,omitempty"`
	Broadcast *BroadcastSummary `json:"broadcast,omitempty"`
	Uploads   *UploadSummary    `json:"uploads,omitempty"`
	Notes     []string          `json:"notes,omitempty"`
}

// Params are the run's settings.
type Params struct {
	Conns          int      `json:"conns"`
	Procs          int      `json:"procs"`
	Ramp           string   `json:"ramp"`
	Hold           string   `json:"hold"`
	DevicesPerUser int      `json:"devices_per_user"`
	Users          int      `json:"users"`
	ConnectTimeout string   `json:"connect_timeout"`
	SourceAddrs    []string `json:"source_addrs,omitempty"`
	Metrics        []string `json:"metrics_urls"`
}

// ConnCounts: Wanted sockets; LoggedIn devices; Attempted dials; Connected
// is the number synced and open when the ramp ended, AtEnd at the end of
// the steady phase (where RSS at N is read); Failed never synced; Dropped
// closed by the other side after synced.
type ConnCounts struct {
	Wanted    int   `json:"wanted"`
	LoggedIn  int   `json:"logged_in"`
	Attempted int64 `json:"attempted"`
	Connected int64 `json:"connected"`
	AtEnd     int64 `json:"at_end"`
	Failed    int64 `json:"failed"`
	Dropped   int64 `json:"dropped"`
	// RedialRetries: sockets dialed again after a reconnect that closed
	// before it synced, as a client retries (the causes are in the error
	// samples); not errors, but a node that drops new sockets shows here.
	RedialRetries int64 `json:"redial_retries,omitempty"`
}

// ServerSummary is what the nodes' /metrics said. AtZero is read with 0
// sockets, before the ramp; AtFull when the ramp ended; AtEnd at the end of
// the steady phase (for hold: after holding every socket idle for --hold).
type ServerSummary struct {
	RSSAt0       int64   `json:"rss_bytes_at_0"`
	RSSAtN       int64   `json:"rss_bytes_at_n"`
	N            int64   `json:"n"`
	BytesPerConn float64 `json:"bytes_per_conn"` // (RSSAtN - RSSAt0) / N
	// RSSSlope is the least-squares slope of RSS over connected sockets,
	// from the per-second samples of the ramp and steady phases with at
	// least N/4 sockets: the marginal cost of one more socket, without the
	// one-off growth of the first connections.
	RSSSlope float64 `json:"rss_slope_bytes_per_conn"`
	// The Go heap in use and the goroutines, the same way: what the RSS
	// slope is made of (RSS also holds the collector's headroom).
	HeapBytesPerConn float64 `json:"heap_inuse_bytes_per_conn"`
	GoroutinesAt0    int64   `json:"goroutines_at_0"`
	GoroutinesAtN    int64   `json:"goroutines_at_n"`
	CPUSecondsAt0    float64 `json:"cpu_seconds_at_0"`
	CPUSecondsAtN    float64 `json:"cpu_seconds_at_n"`
	// CPU spent while the sockets connected, and during the steady phase
	// (as a share of one core: 100 = one core busy).
	CPURampSeconds   float64 `json:"cpu_ramp_seconds"`
	CPURampPercent   float64 `json:"cpu_ramp_percent"`
	CPUPerConnectMS  float64 `json:"cpu_ms_per_connect"`
	CPUSteadySeconds float64 `json:"cpu_steady_seconds"`
	CPUSteadyPercent float64 `json:"cpu_steady_percent"`

	AtZero Sample `json:"at_zero"`
	AtFull Sample `json:"at_full"`
	AtEnd  Sample `json:"at_end"`
}

// Phases are wall-clock seconds.
type Phases struct {
	ProvisionSeconds float64 `json:"provision_seconds"`
	RampSeconds      float64 `json:"ramp_seconds"`
	SteadySeconds    float64 `json:"steady_seconds"`
	DrainSeconds     float64 `json:"drain_seconds"`
}

// LoadGenSummary is the load generator's own cost.
type LoadGenSummary struct {
	Workers []WorkerSummary `json:"workers"`
	// PeakRSSPerConn is the sum of the workers' peak RSS over the sockets
	// they held: an upper bound of the client side's cost per socket.
	PeakRSSPerConn float64 `json:"peak_rss_bytes_per_conn"`
	// RampCPUPercent is the workers' CPU over the ramp as a share of one
	// core (100 = one core busy), next to the node's: if it nears 100 per
	// worker, the load generator, not the node, limits the ramp.
	RampCPUPercent float64 `json:"ramp_cpu_percent"`
	// CoordinatorCPU is the coordinator's own CPU time (logins, scrapes).
	CoordinatorCPU float64 `json:"coordinator_cpu_seconds"`
}

// WorkerSummary is one worker process.
type WorkerSummary struct {
	ID        int   `json:"id"`
	Pid       int   `json:"pid"`
	Devices   int   `json:"devices"`
	Connected int64 `json:"connected"`
	PeakRSS   int64 `json:"peak_rss_bytes"`
	// CPU is the worker's user+system time over the whole run, and
	// RampCPU over the ramp alone.
	CPU     float64 `json:"cpu_seconds"`
	RampCPU float64 `json:"ramp_cpu_seconds"`
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
