package load

import (
	"encoding/json"
	"time"
)

// The coordinator and its workers talk in JSON lines: the coordinator writes
// a workerSpec and then commands on the worker's stdin; the worker writes
// workerMsgs on its stdout. A worker whose stdin closes stops at once, and
// every worker stops by itself at its spec's deadline, so no run outlives
// its bounds even if the coordinator dies.

// Device is one logged-in device. Index is its position in the run's global
// device order (it picks the device's source address).
type Device struct {
	Index    int    `json:"i"`
	User     int    `json:"u"` // index of its user in the run
	UserID   string `json:"user_id"`
	DeviceID string `json:"device_id"`
	Token    string `json:"token"`
}

// workerSpec is everything a worker needs, sent as its first stdin line.
type workerSpec struct {
	ID             int             `json:"id"`
	Scenario       string          `json:"scenario"`
	Target         string          `json:"target"`
	Devices        []Device        `json:"devices"`
	Rate           float64         `json:"rate"` // connects per second for this worker; 0 = at once
	ConnsPerSource int             `json:"conns_per_source"`
	SourceBase     string          `json:"source_base"` // "" = let the kernel choose
	Dialers        int             `json:"dialers"`
	Pollers        int             `json:"pollers"`
	DialTimeout    time.Duration   `json:"dial_timeout"`
	ConnectTimeout time.Duration   `json:"connect_timeout"`
	Deadline       time.Time       `json:"deadline"`
	Plan           json.RawMessage `json:"plan,omitempty"`
}

// Commands, in the order the coordinator sends them.
const (
	cmdConnect = "connect" // start the ramp
	cmdSteady  = "steady"  // every socket is up (or given up): start the steady phase
	cmdDrain   = "drain"   // stop sending; keep receiving
	cmdStop    = "stop"    // close every socket, report, exit
)

type command struct {
	Cmd string `json:"cmd"`
}

// Worker message types.
const (
	msgReady    = "ready"
	msgProgress = "progress"
	msgResult   = "result"
	msgFatal    = "fatal"
)

type workerMsg struct {
	Type   string        `json:"type"`
	Stats  *connStats    `json:"stats,omitempty"`
	Result *workerResult `json:"result,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// connStats are a worker's counters, cumulative since its start.
type connStats struct {
	Wanted     int64 `json:"wanted"`
	Attempted  int64 `json:"attempted"`
	Synced     int64 `json:"synced"`               // reached synced, ever
	Connected  int64 `json:"connected"`            // synced and still open now
	Failed     int64 `json:"failed"`               // never reached synced
	Dropped    int64 `json:"dropped"`              // closed by the other side after synced
	Reconnects int64 `json:"reconnects,omitempty"` // closed by the scenario to be dialed again
	// RedialRetries counts redialed sockets that closed before they synced
	// and were dialed once more (each cause is in the error samples).
	RedialRetries int64            `json:"redial_retries,omitempty"`
	Errors        map[string]int64 `json:"errors,omitempty"`
	Scenario      map[string]int64 `json:"scenario,omitempty"`
	RSS           int64            `json:"rss_bytes"`
	PeakRSS       int64            `json:"peak_rss_bytes"`
	CPU           float64          `json:"cpu_seconds"`
}

// workerResult is a worker's final report.
type workerResult struct {
	connStats
	ErrorSamples map[string]string `json:"error_samples,omitempty"`
	TCP          HistogramData     `json:"tcp"`
	Upgrade      HistogramData     `json:"upgrade"`
	Connect      HistogramData     `json:"connect"`
	Scenario     json.RawMessage   `json:"scenario_report,omitempty"`
}
