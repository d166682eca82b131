// Command sbload is switchboard's load generator.
//
//	sbload run --target http://127.0.0.1:8080 --scenario hold --conns 10000 --procs 1 \
//	    --ramp 20s --hold 30s --out summary.json [--series series.jsonl]
//	sbload table summary.json...   (prints the memory table of summaries)
//	sbload broadcast-table [--json] bare.json full.json...   (the broadcast table of pairs)
//	sbload nginx-conf --dir DIR --listen ADDR [--workers N] [--user U] [--bind-addrs A,B...] NODE_URL...
//	    (deploy/nginx/switchboard.conf rendered for a private NGINX in front of the nodes)
//	sbload prometheus-conf --dir DIR ADMIN_ADDR...   (deploy/prometheus rendered for a private Prometheus)
//	sbload report RUN.json [--prometheus URL]   (the performance report: HTML + Markdown)
//	sbload worker   (started by `run`; not for people)
//
// The logic lives in internal/load; this file only reads flags.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-chat/switchboard/deploy/nginx"
	"github.com/switchboard-chat/switchboard/internal/load"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.Run(ctx, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "sbload:", err)
		}
		os.Exit(1)
	}
}

// Main is the program: ParseFlags fills Config, Run runs it.
type Main struct {
	Config load.Config
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// NewMain returns a Main wired to the process's standard streams.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
}

const usage = `usage:
  sbload run --target URL --scenario hold|fanout|chat|broadcast --conns N [--procs P] [--ramp 20s] [--hold 30s] [--out summary.json] [--series series.jsonl] [flags]
  sbload table summary.json...   (one row per summary: conns, RSS at 0 and N, bytes per conn)
  sbload broadcast-table [--json] bare.json full.json [bare.json full.json...]
                    (one row per pair of broadcast summaries: bare server, then node)
  sbload nginx-conf --dir DIR --listen 127.0.0.1:PORT [--workers N] [--user U] [--bind-addrs A,B...] NODE_URL...
                    (prints deploy/nginx/switchboard.conf rendered for a private NGINX in front of
                     the nodes: pid, logs and temp files in DIR; run it with nginx -p DIR -c DIR/nginx.conf)
  sbload prometheus-conf --dir DIR [--interval 2s] NODE_ADMIN_ADDR...
                    (writes deploy/prometheus's config and rules rendered for a private Prometheus
                     scraping the nodes; run it with prometheus --config.file=DIR/prometheus.yml)
  sbload report RUN.json [--series F] [--prometheus URL | --prometheus-data F] [--html F] [--md F]
                    (the performance report of a run: one self-contained HTML file and a Markdown
                     summary; --prometheus saves what it read as RUN.prometheus.json)
  sbload worker     (started by run)

run flags:
`

// Run dispatches the subcommand.
func (m *Main) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage)
		return flag.ErrHelp
	}
	switch args[0] {
	case "worker":
		return load.RunWorker(m.Stdin, m.Stdout)
	case "table":
		return load.PrintTable(m.Stdout, args[1:])
	case "broadcast-table":
		if len(args) > 1 && args[1] == "--json" {
			rows, err := load.BroadcastRows(args[2:])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(m.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(rows)
		}
		return load.PrintBroadcastTable(m.Stdout, args[1:])
	case "nginx-conf":
		return m.nginxConf(args[1:])
	case "prometheus-conf":
		return m.prometheusConf(args[1:])
	case "report":
		return m.report(ctx, args[1:])
	case "run":
		if err := m.ParseFlags(args[1:]); err != nil {
			return err
		}
		m.Config.Command = commandLine(os.Args)
		sum, err := load.Run(ctx, m.Config, m.Stderr)
		if sum != nil && err == nil {
			fmt.Fprintf(m.Stderr, "done: %s connected %d/%d errors %d connect p50 %.1fms p99 %.1fms; node rss %d -> %d bytes (%.0f bytes/conn)\n",
				sum.Scenario, sum.Conns.AtEnd, sum.Conns.Wanted, sum.ErrorsTotal, sum.ConnectLatency.P50, sum.ConnectLatency.P99,
				sum.Server.RSSAt0, sum.Server.RSSAtN, sum.Server.BytesPerConn)
			if f := sum.Fanout; f != nil {
				fmt.Fprintf(m.Stderr, "fanout: %.0f deliveries/s, latency p50 %.1fms p95 %.1fms p99 %.1fms, delivered %d/%d, dups %d, zero loss %v\n",
					f.DeliveriesPerSecond, f.DeliveryLatency.P50, f.DeliveryLatency.P95, f.DeliveryLatency.P99, f.Delivered, f.Expected, f.Duplicates, f.ZeroLoss)
			}
			if f := sum.Chat; f != nil {
				fmt.Fprintf(m.Stderr, "chat: %.0f sends/s, %.0f deliveries/s, latency p50 %.1fms p95 %.1fms p99 %.1fms, delivered %d/%d, dups %d, reconnects %d, zero loss %v\n",
					f.SendsPerSecond, f.DeliveriesPerSec, f.DeliveryLatency.P50, f.DeliveryLatency.P95, f.DeliveryLatency.P99, f.Delivered, f.Expected, f.Duplicates, f.Reconnects, f.ZeroLoss)
			}
			if u := sum.Uploads; u != nil {
				fmt.Fprintf(m.Stderr, "uploads: %.2f/s ok (%d of %d, %d busy 503, %d errors, %d skipped), latency p50 %.0fms p95 %.0fms, %d -> %d bytes\n",
					u.PerSecond, u.OK, u.Attempted, u.Busy, u.Errors, u.SkippedFull, u.Latency.P50, u.Latency.P95, u.AvgFileBytes, u.AvgOutBytes)
			}
			if b := sum.Broadcast; b != nil {
				fmt.Fprintf(m.Stderr, "broadcast: %.0f deliveries/s (median of %d/%d rounds, %.1fms each), latency p50 %.1fms p95 %.1fms p99 %.1fms, delivered %d/%d, dups %d, zero loss %v\n",
					b.DeliveriesPerSecond, b.Complete, b.Rounds, b.RoundMillis, b.DeliveryLatency.P50, b.DeliveryLatency.P95, b.DeliveryLatency.P99, b.Delivered, b.Expected, b.Duplicates, b.ZeroLoss)
			}
		}
		return err
	case "-h", "--help", "help":
		fmt.Fprint(m.Stderr, usage)
		m.flagSet().PrintDefaults()
		return flag.ErrHelp
	}
	return fmt.Errorf("unknown command %q (want run or worker)", args[0])
}

func (m *Main) flagSet() *flag.FlagSet {
	c := &m.Config
	fs := flag.NewFlagSet("sbload run", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&c.Target, "target", "http://127.0.0.1:8080", "base URL of the node (or of NGINX in front of several)")
	fs.Func("metrics", "comma-separated /metrics URLs of the nodes: each node's --admin-addr + /metrics (default <target>/metrics)", func(s string) error {
		c.Metrics = append(c.Metrics, strings.Split(s, ",")...)
		return nil
	})
	fs.StringVar(&c.Scenario, "scenario", "hold", "hold, fanout, chat or broadcast")
	fs.IntVar(&c.Conns, "conns", 0, "sockets, one per device (fanout: groups × group-size × devices-per-user)")
	fs.IntVar(&c.Procs, "procs", 1, "worker processes (each holds at most 19,900 sockets)")
	fs.DurationVar(&c.Ramp, "ramp", 20*time.Second, "time to open every socket")
	fs.DurationVar(&c.Hold, "hold", 30*time.Second, "length of the steady phase")
	fs.DurationVar(&c.Drain, "drain", 10*time.Second, "longest wait after the steady phase for deliveries in flight")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", 30*time.Second, "a socket not synced this long after its dial counts as an error")
	fs.StringVar(&c.Out, "out", "", "write the JSON summary here")
	fs.StringVar(&c.Series, "series", "", "write one JSON line per second here (connected, node rss, ...)")
	fs.DurationVar(&c.ProgressEvery, "progress", 5*time.Second, "progress line interval")
	fs.IntVar(&c.DevicesPerUser, "devices-per-user", 10, "devices logged in per account")
	fs.IntVar(&c.DevicesPerUser, "users-per-device-group", 10, "same as --devices-per-user")
	fs.IntVar(&c.HTTPConcurrency, "http-concurrency", 16, "parallel HTTP requests while creating accounts and logging in")
	fs.StringVar(&c.SourceBase, "source-base", "", `first loopback source address (default 127.0.0.2 for a loopback target; "none" to not bind)`)
	fs.IntVar(&c.ConnsPerSource, "conns-per-source", 5000, "sockets per source address")
	fs.IntVar(&c.Pollers, "pollers", 1, "epoll goroutines per worker")
	fs.IntVar(&c.Dialers, "dialers", 32, "dialing goroutines per worker")
	fs.IntVar(&c.Groups, "groups", 0, "fanout: number of groups")
	fs.IntVar(&c.GroupSize, "group-size", 0, "fanout: users per group")
	fs.Float64Var(&c.SendRate, "rate", 1, "fanout: messages per second per sending device")
	fs.IntVar(&c.Senders, "senders", 0, "fanout: sending devices per group (0 = all)")
	fs.IntVar(&c.PayloadBytes, "payload", 200, "fanout, broadcast: ciphertext bytes; chat: the largest ciphertext")
	fs.BoolVar(&c.Pairwise, "pairwise", false, "fanout: send one ciphertext per recipient device (the pairwise shape) instead of one shared")
	fs.DurationVar(&c.AckInterval, "ack-interval", time.Second, "fanout, chat: how often devices ack what they received (0 = never)")
	fs.IntVar(&c.DMs, "dms", 2, "chat: direct conversations each user starts with the next users (each user is in about twice as many)")
	fs.IntVar(&c.SmallGroup, "small-group", 8, "chat: users per small group, every user in one (0 = none)")
	fs.IntVar(&c.LargeGroup, "large-group", 0, "chat: users per large group, every user in one (0 = none)")
	fs.Func("mix", "chat: weights of direct, small-group and large-group messages, e.g. 60,30,10 (the default)", func(s string) error {
		parts := strings.Split(s, ",")
		if len(parts) != len(c.Mix) {
			return fmt.Errorf("want %d comma-separated weights", len(c.Mix))
		}
		for i, p := range parts {
			if _, err := fmt.Sscan(strings.TrimSpace(p), &c.Mix[i]); err != nil {
				return fmt.Errorf("weight %q: %v", p, err)
			}
		}
		return nil
	})
	fs.Float64Var(&c.ChatRate, "chat-rate", 0, "chat: messages per second, the whole run")
	fs.Float64Var(&c.Churn, "churn", 0, "chat: reconnects per second, the whole run (a random device drops its socket and reconnects)")
	fs.IntVar(&c.Watch, "watch", 0, "chat: users each socket watches for presence once synced (presence_subscribe, at most 256; 0 = none)")
	fs.Float64Var(&c.TypingRate, "typing-rate", 0, "chat: typing starts per second, the whole run, each from a random connected device (0 = none)")
	fs.DurationVar(&c.Storm, "storm", 0, "chat: a reconnect storm this far into the steady phase: every connected device drops its socket and reconnects at once (0 = none)")
	fs.IntVar(&c.PayloadMin, "payload-min", 0, "chat: the smallest ciphertext (default min(100, --payload)); sizes are uniform in between")
	fs.StringVar(&c.MediaDir, "media-dir", "", "any scenario: during the steady phase, POST the .jpg/.png/.webp photos of this folder to /v1/media (scripts/bench-media.sh fetches a corpus)")
	fs.Float64Var(&c.UploadRate, "upload-rate", 1, "with --media-dir: image uploads per second, the whole run (open loop)")
	fs.IntVar(&c.UploadConcurrency, "upload-concurrency", 4, "with --media-dir: uploads waiting for their answer at most (past it an upload is skipped and counted)")
	fs.IntVar(&c.Rounds, "rounds", 10, "broadcast: messages to every socket, one at a time (the steady phase ends after the last; --hold bounds it)")
	fs.DurationVar(&c.RoundTimeout, "round-timeout", 30*time.Second, "broadcast: longest wait for one round's last delivery")
	return fs
}

// ParseFlags reads the flags of `sbload run`.
func (m *Main) ParseFlags(args []string) error {
	fs := m.flagSet()
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return nil
}

// commandLine quotes args the way a shell would need them.
func commandLine(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// nginxConf prints the deployed NGINX configuration rendered for a private
// instance in front of the nodes given as arguments (scripts/bench-cluster.sh).
func (m *Main) nginxConf(args []string) error {
	var p nginx.Private
	fs := flag.NewFlagSet("sbload nginx-conf", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	fs.StringVar(&p.Dir, "dir", "", "absolute folder for pid, logs and temp files")
	fs.StringVar(&p.Listen, "listen", "", "address to listen on, e.g. 127.0.0.1:18080")
	fs.IntVar(&p.Workers, "workers", 0, "worker_processes (0 = as deployed); each holds at most ~9,900 proxied sockets")
	fs.StringVar(&p.User, "user", "", "user the workers run as when started as root (empty: no user directive)")
	fs.Func("bind-addrs", "source addresses of the connections to the nodes for sockets, comma-separated (proxy_bind; e.g. 127.0.0.11,127.0.0.12)", func(v string) error {
		p.BindAddrs = strings.Split(v, ",")
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	p.Upstreams = fs.Args()
	conf, err := nginx.Render(p)
	if err != nil {
		return err
	}
	_, err = m.Stdout.Write(conf)
	return err
}
