// Command sbabuse is the bounded abuse benchmark of issue 18: it replays, one
// after the other, the requests that once cost a node far more than their
// size (server-assisted sends into a big group, concurrent logins, ping
// floods that never read, mass group creation, big history pages and
// stalled readers), against a node on loopback, while it samples the node's
// resident memory and its /healthz latency every --sample. It prints one
// table row per replay: what was sent, how it was answered, the peak RSS and
// the /healthz latency during it.
//
//	sbabuse --target http://127.0.0.1:8080 --pid PID [--admin URL] [--out DIR] [--items 1,2,3,5,6] [--tiny]
//
// Every replay is bounded in count and time and stops by itself; run it only
// against a node of your own (scripts/bench-abuse.sh starts a fresh one). The
// node must run with its defaults: the sizes below are the issue's, and the
// answers expected are those of docs/security.md's limits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if conf, ok := os.LookupEnv(probeEnv); ok {
		os.Exit(probeMain(conf))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := &Main{Stdout: os.Stdout, Stderr: os.Stderr}
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sbabuse:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "sbabuse:", err)
		os.Exit(1)
	}
}

// Config is everything a run needs.
type Config struct {
	Target string        // the node's API base URL (http://127.0.0.1:PORT)
	Admin  string        // the node's admin base URL: RSS from /metrics when PID is 0
	PID    int           // the node's process id: RSS from /proc/PID/status
	Out    string        // folder for summary.json and series.csv; "" = none
	Items  map[int]bool  // which replays run
	Sample time.Duration // how often RSS and /healthz are sampled
	Sizes  Sizes
}

// Sizes are the replays' sizes; DefaultSizes are the issue's.
type Sizes struct {
	GroupUsers      int           // item 1: users in the big group, each with DevicesPerUser devices
	DevicesPerUser  int           // item 1
	AssistedBytes   int           // item 1: plaintext size of the refused sends (85 KiB)
	CapBytes        int           // item 1: plaintext size of the sends at the caps (--max-assisted-bytes)
	CapRecipients   int           // item 1: recipient devices of the sends at the caps (--max-assisted-recipients)
	Senders         int           // item 1: parallel senders
	SendsPerSender  int           // item 1
	Logins          int           // item 2: concurrent logins, for unknown users and for a real one
	PingSockets     int           // item 3
	PingFor         time.Duration // item 3
	CreateFor       time.Duration // item 5: how long the one device creates conversations
	BigGroups       int           // item 5: groups the victim ends up in
	BigGroupMembers int           // item 5
	VictimLogins    int           // item 5
	HistoryMessages int           // item 6: messages stored first
	MessageBytes    int           // item 6: ciphertext size of each
	HistoryReaders  int           // item 6: parallel readers of ?limit=1000 pages
	HistoryStallers int           // item 6: requests whose client never reads the body
	HistoryFor      time.Duration // item 6
}

// DefaultSizes are the sizes of issue 18's "Found" list.
func DefaultSizes() Sizes {
	return Sizes{
		GroupUsers: 100, DevicesPerUser: 10, AssistedBytes: 85 << 10, CapBytes: 64 << 10, CapRecipients: 256,
		Senders: 8, SendsPerSender: 4,
		Logins:      200,
		PingSockets: 4, PingFor: 15 * time.Second,
		CreateFor: 10 * time.Second, BigGroups: 1500, BigGroupMembers: 1000, VictimLogins: 3,
		HistoryMessages: 300, MessageBytes: 40 << 10, HistoryReaders: 8, HistoryStallers: 16, HistoryFor: 10 * time.Second,
	}
}

// TinySizes keep every replay's shape at a size a test can afford.
func TinySizes() Sizes {
	return Sizes{
		GroupUsers: 4, DevicesPerUser: 2, AssistedBytes: 85 << 10, CapBytes: 64 << 10, CapRecipients: 256,
		Senders: 2, SendsPerSender: 1,
		Logins:      4,
		PingSockets: 1, PingFor: time.Second,
		CreateFor: 500 * time.Millisecond, BigGroups: 3, BigGroupMembers: 5, VictimLogins: 1,
		HistoryMessages: 3, MessageBytes: 4 << 10, HistoryReaders: 2, HistoryStallers: 2, HistoryFor: 500 * time.Millisecond,
	}
}

// Main is the program: ParseFlags fills Config, Run runs it.
type Main struct {
	Config Config
	Stdout io.Writer
	Stderr io.Writer
}

// ParseFlags fills m.Config from args.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("sbabuse", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	c := Config{Sample: 50 * time.Millisecond}
	items := "1,2,3,5,6"
	tiny := false
	fs.StringVar(&c.Target, "target", "", "the node's API base URL (http://127.0.0.1:PORT), loopback only")
	fs.StringVar(&c.Admin, "admin", "", "the node's admin base URL, to read RSS from /metrics when --pid is not given")
	fs.IntVar(&c.PID, "pid", 0, "the node's process id (RSS from /proc/PID/status)")
	fs.StringVar(&c.Out, "out", "", "folder for summary.json, series.csv and table.md")
	fs.StringVar(&items, "items", items, "the replays to run, of 1,2,3,5,6")
	fs.DurationVar(&c.Sample, "sample", c.Sample, "how often RSS and /healthz are sampled")
	fs.BoolVar(&tiny, "tiny", false, "tiny sizes (a smoke test), not the issue's")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.Target == "" {
		return errors.New("--target is required")
	}
	if c.PID == 0 && c.Admin == "" {
		return errors.New("--pid or --admin is required (where RSS comes from)")
	}
	c.Items = map[int]bool{}
	for _, f := range strings.Split(items, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || !map[int]bool{1: true, 2: true, 3: true, 5: true, 6: true}[n] {
			return fmt.Errorf("--items: %q is not one of 1,2,3,5,6", f)
		}
		c.Items[n] = true
	}
	c.Sizes = DefaultSizes()
	if tiny {
		c.Sizes = TinySizes()
	}
	m.Config = c
	return nil
}

// Run runs the replays in order and prints the table.
func (m *Main) Run(ctx context.Context) error {
	if err := loopbackOnly(m.Config.Target); err != nil {
		return err
	}
	b, err := newBench(m.Config, m.Stderr)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.run(ctx); err != nil {
		return err
	}
	return b.report(m.Stdout)
}
