#!/usr/bin/env bash
# Resident memory per idle authenticated WebSocket on one switchboard node.
#
# For each connection count (default 5000, 10000 and 19500) it starts a fresh
# node on a fresh SQLite data folder, reads the node's RSS at 0 sockets,
# opens N authenticated sockets with sbload (--scenario hold), holds them
# idle, reads RSS again, and stops the node. Bytes per connection is
# (RSS at N - RSS at 0) / N. Summaries (JSON), time series and logs go to the
# results folder; a table is printed at the end.
#
#   scripts/bench-memory.sh [--steps "5000 10000 19500"] [--ramp 20s] [--hold 30s] [--results DIR]
#                           [--store sqlite|postgres] [--node-flags "--gc-percent 50"]
#
# --store postgres starts a private PostgreSQL (initdb in the work folder, a
# free loopback port, as the postgres user) and gives each step a fresh
# database, so the node's RSS holds no database cache; sqlite (the default)
# is the embedded store, whose page cache lives inside the node's RSS.
#
# The node runs with cheap password hashing (--argon2-time 1
# --argon2-memory 64): logins are setup here, not what is measured.
set -euo pipefail
cd "$(dirname "$0")/.."

steps="5000 10000 19500"
ramp=20s
hold=30s
store=sqlite
node_flags=""
results="${TMPDIR:-/tmp}/switchboard-bench/memory-$(date -u +%Y%m%dT%H%M%SZ)"
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --ramp) ramp="$2"; shift 2 ;;
    --hold) hold="$2"; shift 2 ;;
    --results) results="$2"; shift 2 ;;
    --store) store="$2"; shift 2 ;;
    --node-flags) node_flags="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "bench-memory: unknown argument $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$results"
echo "bench-memory: building switchboard and sbload"
go build -o "$work/switchboard" ./cmd/switchboard
go build -o "$work/sbload" ./cmd/sbload

echo "bench-memory: NOTE the node runs with cheap password hashing (--argon2-time 1 --argon2-memory 64); logins are not what is measured"
echo "bench-memory: machine $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), open files $(ulimit -Hn); results in $results"

if [ "$store" = postgres ]; then
  start_private_pg
  echo "bench-memory: private PostgreSQL on 127.0.0.1:$pgport (fsync on)"
elif [ "$store" != sqlite ]; then
  echo "bench-memory: --store is sqlite or postgres" >&2; exit 2
fi

summaries=()
for n in $steps; do
  procs=$(( (n + 9999) / 10000 ))   # a worker holds at most ~19,900 sockets; 19500 runs on 2
  data="$work/data-$n"
  mkdir -p "$data"
  db=()
  if [ "$store" = postgres ]; then
    db=(--db "$(create_db "sb$n")")
  fi
  # shellcheck disable=SC2086 # node_flags is a list of flags
  start_node "$results/node-$n.log" --addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --data-dir "$data" --argon2-time 1 --argon2-memory 64 "${db[@]}" $node_flags
  url=$node_url
  echo "bench-memory: $n connections ($procs worker processes) against $url"
  "$work/sbload" run --target "$url" --metrics "$node_admin/metrics" --scenario hold --conns "$n" --procs "$procs" \
    --ramp "$ramp" --hold "$hold" --out "$results/hold-$n.json" --series "$results/hold-$n.series.jsonl" \
    2>&1 | tee "$results/sbload-$n.log"
  summaries+=("$results/hold-$n.json")
  stop_node
done

echo
echo "memory per idle authenticated WebSocket (node: fresh $store store, cheap argon2, flags: ${node_flags:-none}; bytes/conn = (RSS at N - RSS at 0) / N)"
"$work/sbload" table "${summaries[@]}" | tee "$results/table.txt"
echo "summaries: ${summaries[*]}"
