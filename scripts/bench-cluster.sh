#!/usr/bin/env bash
# Several switchboard nodes behind NGINX, driven through NGINX by sbload.
#
# Starts a private PostgreSQL (fsync on), a private Redis, K nodes on them
# (each on a free loopback port) and a private NGINX running
# deploy/nginx/switchboard.conf (rendered by `sbload nginx-conf`) in front of
# them, then runs `sbload run --target <NGINX> --metrics <every node>` with
# the flags after --. While it runs, a sampler reads every 2 s each node's
# sockets and RSS (its /metrics), the NGINX workers' summed RSS (ps) and the
# kernel's TCP numbers (/proc/net/sockstat; /proc/meminfo Slab). At 0 is
# the last sample without sockets (after sbload's logins, before its ramp),
# at N the last sample with the most sockets.
# It prints, per proxied connection: NGINX user space, kernel memory (four
# socket ends: client, NGINX front, NGINX back, node), and node RSS.
#
#   scripts/bench-cluster.sh [--nodes K] [--workers W] [--name NAME] [--results DIR]
#                            [--node-flags "..."] [--pool N] [--prometheus] [--node-bin PATH]
#                            [--bind-addrs N] -- SBLOAD_FLAGS...
#
# --bind-addrs N spreads NGINX's connections to the nodes for sockets over N
# loopback source addresses, 127.0.0.11 to 127.0.0.(10+N) (proxy_bind over
# $switchboard_bind, deploy/nginx/README.md): each brings its own ephemeral
# ports per node, past the ~14k-per-node connect wall of one address.
# Without it NGINX connects from 127.0.0.1 as shipped.
#
# --prometheus also runs a private Prometheus (deploy/prometheus's config and
# rules, 1 s scrapes of every node) and, after the run, `sbload report`: the
# performance report NAME.html and NAME.md, from NAME.json, NAME.series.jsonl
# and what Prometheus recorded (saved as NAME.prometheus.json).
# --node-bin runs a switchboard binary built elsewhere (an older commit, for
# a before/after on the same run shape). At the end each node's bus work
# (messages received from the bus, publishes, CPU seconds) is written to
# NAME.bus.txt.
#
#   scripts/bench-cluster.sh --nodes 3 --name hold-30k -- --scenario hold --conns 30000 --procs 2 --ramp 30s --hold 30s
#   scripts/bench-cluster.sh --nodes 3 --name fanout -- --scenario fanout --groups 10 --group-size 50 \
#       --devices-per-user 10 --senders 10 --rate 1 --ramp 10s --hold 30s
#
# --workers defaults to enough NGINX workers for the sockets (each holds at
# most ~9,900 proxied sockets under the 20,000-file cap; this uses 9,000 for
# slack, and at least 2). A node process holds at most ~19,500 sockets here:
# use --nodes >= sockets / 19,500. The nodes run with cheap password hashing
# (logins are set-up here, not what is measured), a member limit of 2,000,
# no per-conversation send limit, and pool_max_conns=--pool (default 16) each.
set -euo pipefail
cd "$(dirname "$0")/.."

nodes=3
workers=0
name=cluster
node_flags=""
pool=16
prom=0
node_bin=""
bind_addrs=0
results="${TMPDIR:-/tmp}/switchboard-bench/cluster-$(date -u +%Y%m%dT%H%M%SZ)"
while [ $# -gt 0 ]; do
  case "$1" in
    --nodes) nodes="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --name) name="$2"; shift 2 ;;
    --results) results="$2"; shift 2 ;;
    --node-flags) node_flags="$2"; shift 2 ;;
    --pool) pool="$2"; shift 2 ;;
    --prometheus) prom=1; shift ;;
    --node-bin) node_bin="$2"; shift 2 ;;
    --bind-addrs) bind_addrs="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,41p' "$0"; exit 0 ;;
    *) echo "bench-cluster: unknown argument $1 (sbload's flags go after --)" >&2; exit 2 ;;
  esac
done

# The sockets sbload will open, from its flags, to size NGINX.
sockets=0
groups=0 group_size=0 devices=10
args=("$@")
for ((i = 0; i < ${#args[@]} - 1; i++)); do
  case "${args[$i]}" in
    --conns) sockets=${args[$((i + 1))]} ;;
    --groups) groups=${args[$((i + 1))]} ;;
    --group-size) group_size=${args[$((i + 1))]} ;;
    --devices-per-user) devices=${args[$((i + 1))]} ;;
  esac
done
[ "$sockets" = 0 ] && sockets=$((groups * group_size * devices))
if [ "$workers" = 0 ]; then
  workers=$(( (sockets + 8999) / 9000 ))
  [ "$workers" -lt 2 ] && workers=2
fi

work=$(mktemp -d)
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh
sampler_pid=""
cluster_cleanup() {
  if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; fi
  stop_cluster   # first: NGINX writes its buffered access log as it exits
  if [ -n "$nginx_dir" ] && [ -d "$nginx_dir" ]; then
    tail -c 100000 "$nginx_dir/error.log" >"$results/nginx-error-$name.log" 2>/dev/null || true
    # Statuses NGINX answered /v1/ws with (101 upgraded, 499 client gone
    # before the node answered, 502/504 node failed), with the count.
    awk '$6 == "/v1/ws" {print $9}' "$nginx_dir/access.log" 2>/dev/null | sort | uniq -c >"$results/nginx-ws-status-$name.txt" || true
  fi
  bench_cleanup
}
trap cluster_cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$results"
echo "bench-cluster: building switchboard and sbload"
if [ -n "$node_bin" ]; then cp "$node_bin" "$work/switchboard"; else go build -o "$work/switchboard" ./cmd/switchboard; fi
go build -o "$work/sbload" ./cmd/sbload
echo "bench-cluster: machine $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), open files $(ulimit -Hn); results in $results"

start_private_pg
db="$(create_db sbcluster)?pool_max_conns=$pool"
start_private_redis
echo "bench-cluster: private PostgreSQL on 127.0.0.1:$pgport (fsync on), redis-server on 127.0.0.1:$redisport"
for ((k = 0; k < nodes; k++)); do
  # One after the other: the first applies the migrations.
  # shellcheck disable=SC2086 # node_flags is a list of flags
  start_cluster_node "$results/node-$name-$k.log" --addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --data-dir "$work/data-$k" \
    --db "$db" --redis "redis://127.0.0.1:$redisport/0" \
    --argon2-time 1 --argon2-memory 64 --max-members 2000 --send-rate-conversation 0 $node_flags
done
if [ "$bind_addrs" -gt 0 ]; then
  nginx_bind_addrs=$(seq -s, -f '127.0.0.%g' 11 $((10 + bind_addrs)))
fi
start_private_nginx "$workers" "${cluster_urls[@]}"
echo "bench-cluster: $nodes nodes (${cluster_urls[*]}), flags: ${node_flags:-none}"
echo "bench-cluster: NGINX at $nginx_url, $workers workers for ~$sockets sockets, connecting to the nodes from ${nginx_bind_addrs:-127.0.0.1}"

metrics=$(printf '%s/metrics,' "${cluster_admins[@]}"); metrics=${metrics%,}
if [ "$prom" = 1 ]; then
  start_private_prometheus "${cluster_admins[@]}"
  echo "bench-cluster: Prometheus at $prom_url scraping the nodes every second"
fi

# nginx_workers_cpu prints the NGINX workers' user and system CPU so far
# (clock ticks, /proc/PID/stat), tab-separated: connect()'s search for a
# free ephemeral port is system time in the worker that connects.
nginx_workers_cpu() {
  local pid
  for pid in $(ps -o pid= --ppid "$nginx_pid" 2>/dev/null); do
    awk '{print $14, $15}' "/proc/$pid/stat" 2>/dev/null
  done | awk '{u += $1; s += $2} END {printf "%d\t%d", u, s}'
}

# sample prints one tab-separated line: unix time, total sockets, summed node
# RSS (bytes), NGINX workers' RSS (KiB), TCP inuse, TCP mem (pages), Slab
# (KiB), MemAvailable (KiB), each node's sockets, NGINX workers' private
# memory (KiB), the nodes' SUBSCRIBE commands so far, the NGINX workers'
# user and system CPU (ticks).
sample() {
  local total=0 rss=0 subs=0 per=() u s r c
  for u in "${cluster_admins[@]}"; do
    s=$(node_metric "$u" switchboard_ws_connections); r=$(node_metric "$u" process_resident_memory_bytes)
    c=$(node_metric "$u" switchboard_bus_subscribe_commands_total)
    total=$((total + ${s:-0})); rss=$((rss + ${r:-0})); subs=$((subs + ${c:-0})); per+=("${s:-?}")
  done
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date +%s)" "$total" "$rss" "$(nginx_workers_rss_kb)" \
    "$(sockstat_tcp inuse)" "$(sockstat_tcp mem)" "$(meminfo_kb Slab)" "$(meminfo_kb MemAvailable)" "${per[*]}" \
    "$(nginx_workers_private_kb)" "$subs" "$(nginx_workers_cpu)"
}
samples="$results/$name.samples.tsv"
printf 'time\tsockets\tnode_rss\tnginx_rss_kb\ttcp_inuse\ttcp_mem_pages\tslab_kb\tmem_available_kb\tper_node\tnginx_private_kb\tsubscribe_cmds\tnginx_utime_ticks\tnginx_stime_ticks\n' >"$samples"
at0=$(sample)
echo "$at0" >>"$samples"
( while sleep 2; do sample >>"$samples"; done ) &
sampler_pid=$!

set +e
"$work/sbload" run --target "$nginx_url" --metrics "$metrics" --out "$results/$name.json" \
  --series "$results/$name.series.jsonl" "$@" 2>&1 | tee "$results/sbload-$name.log"
rc=${PIPESTATUS[0]}
set -e
kill "$sampler_pid" 2>/dev/null || true; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=""

# Each node's bus work: what it received from the bus (decoded conversation
# messages; a node before interest-based fan-out has no such counter and
# received every publish of the cluster), what it published, its CPU.
for ((k = 0; k < nodes; k++)); do
  u=${cluster_admins[$k]}
  printf 'node %d\tfanout_received %s\tbus_received %s\tpublished %s\tconversations %s\tsubscribe_cmds %s\tcpu_seconds %s\n' "$k" \
    "$(node_metric "$u" switchboard_fanout_received_total)" "$(node_metric "$u" switchboard_bus_received_total)" \
    "$(node_metric "$u" switchboard_bus_published_total)" "$(node_metric "$u" switchboard_fanout_conversations)" \
    "$(node_metric "$u" switchboard_bus_subscribe_commands_total)" "$(node_metric "$u" process_cpu_seconds_total)"
done | tee "$results/$name.bus.txt"

# The figures: at 0 (first sample) and at N (the last sample with the most
# sockets), per proxied connection.
python3 - "$samples" "$results/$name.cluster.json" "$nodes" "$workers" <<'PY'
import json, sys
path, out, nodes, workers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = []
for line in open(path).read().splitlines()[1:]:
    f = line.split("\t")
    try:
        rows.append(dict(t=int(f[0]), sockets=int(f[1]), node_rss=int(f[2]), nginx_kb=int(f[3]), inuse=int(f[4]),
                         mem_pages=int(f[5]), slab_kb=int(f[6]), avail_kb=int(f[7]), per_node=[int(x) if x.isdigit() else None for x in f[8].split()],
                         nginx_private_kb=int(f[9])))
        if len(f) > 12:
            rows[-1].update(nginx_utime=int(f[11]), nginx_stime=int(f[12]))
    except (ValueError, IndexError):
        pass
# At N: the last sample with the most sockets. At 0: the last sample with no
# socket before it, i.e. after sbload's logins (which leave keepalive and
# cache memory behind) and just before its ramp; the very first sample,
# before sbload started, is kept as "before".
ni = max(range(len(rows)), key=lambda i: (rows[i]["sockets"], i))
n, N = rows[ni], rows[ni]["sockets"]
z = next((rows[i] for i in range(ni, -1, -1) if rows[i]["sockets"] == 0), rows[0])
per = lambda d: round(d / N, 1) if N else None
fig = {
    "nodes": nodes, "nginx_workers": workers, "sockets_at_n": N, "sockets_per_node_at_n": n["per_node"],
    "before_sbload": rows[0], "at_0": z, "at_n": n,
    "nginx_user_bytes_per_conn": per((n["nginx_kb"] - z["nginx_kb"]) * 1024),
    "nginx_private_bytes_per_conn": per((n["nginx_private_kb"] - z["nginx_private_kb"]) * 1024),
    "kernel_tcp_mem_bytes_per_conn": per((n["mem_pages"] - z["mem_pages"]) * 4096),
    "kernel_slab_bytes_per_conn": per((n["slab_kb"] - z["slab_kb"]) * 1024),
    "tcp_sockets_per_conn": per(n["inuse"] - z["inuse"]),
    "node_rss_bytes_per_conn": per(n["node_rss"] - z["node_rss"]),
    "mem_used_bytes_per_conn": per((z["avail_kb"] - n["avail_kb"]) * 1024),
    "notes": [
        "per conn = (at N - at 0) / sockets at N; one proxied connection is 4 socket ends: client, NGINX front, NGINX back, node",
        "kernel_tcp_mem is /proc/net/sockstat TCP mem (pages of socket buffers the kernel charged); kernel_slab is /proc/meminfo Slab (socket, inode, dentry, file and epoll objects)",
        "mem_used is MemAvailable's drop: it includes sbload's workers and whatever else the box did meanwhile (noisy)",
    ],
}
# NGINX's CPU per new socket while sockets were added, split at 14,000
# sockets on the largest node: past it, connect() from one source address
# to that node searches the used ephemeral ports (deploy/nginx/README.md).
import os
tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
split = {}
for a, b in zip(rows, rows[1:]):
    added = b["sockets"] - a["sockets"]
    if added <= 0 or "nginx_stime" not in a or "nginx_stime" not in b:
        continue
    side = "above_14k_per_node" if max([x or 0 for x in b["per_node"]] or [0]) >= 14000 else "below_14k_per_node"
    acc = split.setdefault(side, {"sockets_added": 0, "user_ms": 0.0, "sys_ms": 0.0})
    acc["sockets_added"] += added
    acc["user_ms"] += (b["nginx_utime"] - a["nginx_utime"]) * tick_ms
    acc["sys_ms"] += (b["nginx_stime"] - a["nginx_stime"]) * tick_ms
for acc in split.values():
    acc["user_ms_per_socket"] = round(acc["user_ms"] / acc["sockets_added"], 3)
    acc["sys_ms_per_socket"] = round(acc["sys_ms"] / acc["sockets_added"], 3)
fig["nginx_cpu_while_adding_sockets"] = split
json.dump(fig, open(out, "w"), indent=2)
print(f"\nat N: {N} sockets over {nodes} nodes {n['per_node']}, NGINX {workers} workers")
print(f"  NGINX user space per proxied connection:  {fig['nginx_user_bytes_per_conn']} B  (workers' RSS {z['nginx_kb']} -> {n['nginx_kb']} KiB)")
print(f"  NGINX private memory per connection:      {fig['nginx_private_bytes_per_conn']} B  (workers' Private_* {z['nginx_private_kb']} -> {n['nginx_private_kb']} KiB)")
print(f"  kernel TCP buffer memory per connection:  {fig['kernel_tcp_mem_bytes_per_conn']} B  (sockstat TCP mem {z['mem_pages']} -> {n['mem_pages']} pages)")
print(f"  kernel slab per proxied connection:       {fig['kernel_slab_bytes_per_conn']} B  (Slab {z['slab_kb']} -> {n['slab_kb']} KiB; 4 socket ends)")
print(f"  TCP sockets per connection:               {fig['tcp_sockets_per_conn']}  (inuse {z['inuse']} -> {n['inuse']})")
print(f"  node RSS per socket:                      {fig['node_rss_bytes_per_conn']} B  (nodes {z['node_rss']} -> {n['node_rss']} B)")
for side, acc in sorted(split.items(), reverse=True):
    print(f"  NGINX CPU per socket added, {side.replace('_', ' ')}: user {acc['user_ms_per_socket']} ms, system {acc['sys_ms_per_socket']} ms  ({acc['sockets_added']} sockets)")
PY
echo "summary: $results/$name.json; figures: $results/$name.cluster.json"
if [ "$prom" = 1 ] && [ "$rc" = 0 ]; then
  sleep 3   # the last scrapes of the run
  "$work/sbload" report "$results/$name.json" --prometheus "$prom_url"
fi
exit "$rc"
