package report

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/switchboard-chat/switchboard/wire"
)

// pressure is one resource's use at the seed's target load per node
// (100,000 sockets, 100,000 deliveries/s), projected linearly from the
// run: 1 is its limit. The largest is the limit a node reaches first.
type pressure struct {
	name string
	use  float64
	why  string
	fix  string
}

// recommend derives what to change from the numbers: the projected
// pressures, ordered, each with its remedy, then what the run itself
// showed failing.
func recommend(r *Report, fig scenarioFigures, sends bool, cpu float64) []string {
	s := r.in.Summary
	nodes := float64(r.Nodes)
	var ps []pressure
	perConn := s.Server.BytesPerConn
	if s.Server.RSSSlope > 0 {
		perConn = s.Server.RSSSlope // the marginal cost, without the first sockets' one-off growth
	}
	if perConn > 0 && s.Machine.MemoryBytes > 0 {
		need := perConn * TargetConns
		ps = append(ps, pressure{"memory", need / (0.8 * float64(s.Machine.MemoryBytes)),
			fmt.Sprintf("%s per socket is %s for 100,000 sockets (plus ~5 KB of kernel memory each), against %s on this host",
				sizeOf(perConn), sizeOf(need), sizeOf(float64(s.Machine.MemoryBytes))),
			"run idle-heavy nodes with --gc-percent 25 (less heap headroom per socket), keep --max-queued small, or use hosts with more memory"})
	}
	if s.Machine.FileLimit > 0 {
		ps = append(ps, pressure{"open files", TargetConns / float64(s.Machine.FileLimit),
			fmt.Sprintf("one file per socket: the open-file limit of %d caps a process at about that many sockets", s.Machine.FileLimit),
			"raise the kernel limits: LimitNOFILE in the node's systemd unit (at least 2 × the sockets), fs.nr_open and fs.file-max, and on the proxy net.ipv4.ip_local_port_range (deploy/sysctl); behind NGINX, give it several source addresses"})
	}
	if sends && fig.deliveriesPerSecond > 0 && cpu > 0 {
		perNode := fig.deliveriesPerSecond / nodes
		at := cpu * TargetMessagesPerS / perNode
		ps = append(ps, pressure{"CPU", at / TargetCPUPercent,
			fmt.Sprintf("%.1f %% of the host carried %.0f deliveries/s per node: 100,000/s would take %.0f %%", cpu, perNode, at),
			fmt.Sprintf("add nodes (about %.0f for 100,000 deliveries/s at 80 %% CPU each, at this run's cost); with Redis, shard the bus (Redis Cluster's sharded pub/sub) once one Redis core is busy; raise --gc-percent if memory allows (less collector CPU)",
				math.Ceil(at/TargetCPUPercent))})
	}
	if sends && fig.delivery.Count > 0 {
		ps = append(ps, pressure{"fan-out latency", fig.delivery.P95 / TargetFanOutP95MS,
			fmt.Sprintf("p95 %.1f ms at this load (commit p95 %.1f ms)", fig.delivery.P95, fig.commit.P95),
			latencyFix(fig, cpu)})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].use > ps[j].use })
	var out []string
	if len(ps) > 0 {
		first := ps[0]
		out = append(out, fmt.Sprintf("**The first limit a node reaches at the seed's per-node targets is %s** (%.0f %% of it, projected linearly from this run): %s. What to change: %s.",
			first.name, 100*first.use, first.why, first.fix))
		for _, p := range ps[1:] {
			out = append(out, fmt.Sprintf("Then %s (%.0f %%): %s. What to change: %s.", p.name, 100*p.use, p.why, p.fix))
		}
	}
	for _, row := range r.Rows {
		if row.Verdict == "fail" && !strings.Contains(row.What, "per node") {
			out = append(out, fmt.Sprintf("Failed in this run: %s measured %s (target %s).", row.What, row.Measured, row.Target))
		}
	}
	if errs := topErrors(r.Errors); errs != "" {
		out = append(out, "Errors seen: "+errs+". "+errorAdvice(r.Errors))
	}
	out = append(out, "Backup plan if scaling is not enough: cap sockets per node with --max-conns (503 + Retry-After, /readyz fails so the balancer sends new sockets elsewhere), drain nodes with SIGTERM (clients move with 1001 and resync), fall back to fewer larger nodes (docs/runbook.md, Backup plan).")
	return out
}

func latencyFix(fig scenarioFigures, cpu float64) string {
	switch {
	case cpu > TargetCPUPercent:
		return "the node is CPU-bound: add nodes before anything else"
	case fig.commit.P95 > TargetFanOutP95MS/2:
		return "the commit dominates: PostgreSQL on a faster disk, a larger pool (pool_max_conns), fewer lanes' contention; history reads to replicas"
	default:
		return "queueing after the commit: with several nodes, the bus (shard Redis pub/sub); on one node, --flush-delay 0 and fewer, larger groups per socket"
	}
}

func topErrors(kv []KV) string {
	var parts []string
	for i, e := range kv {
		if i == 4 {
			break
		}
		parts = append(parts, fmt.Sprintf("%s × %.0f", e.Key, e.Value))
	}
	return strings.Join(parts, ", ")
}

func errorAdvice(kv []KV) string {
	var out []string
	for _, e := range kv {
		switch {
		case strings.Contains(e.Key, strconv.Itoa(wire.CloseSlowConsumer)):
			out = append(out, "4008 closes are slow consumers: raise --max-queued only if memory allows")
		case strings.Contains(e.Key, "too many open files"), strings.Contains(e.Key, "EMFILE"):
			out = append(out, "raise the open-file limits")
		case strings.Contains(e.Key, wire.CodeUnavailable):
			out = append(out, "unavailable means the store or bus was unreachable or a node was full (--max-conns)")
		case strings.Contains(e.Key, wire.CodeRateLimited):
			out = append(out, "rate_limited: a load test must lift the abuse limits it trips (docs/security.md)")
		}
	}
	return strings.Join(out, "; ")
}

func sizeOf(v float64) string {
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%.1f GiB", v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%.1f KiB", v/(1<<10))
	}
	return fmt.Sprintf("%.0f B", v)
}
