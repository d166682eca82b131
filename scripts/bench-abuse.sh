#!/usr/bin/env bash
# The bounded abuse benchmark of issue 18 (docs/security.md, "Abuse benchmark").
#
# Builds switchboard and sbabuse, starts a fresh node with its default flags
# (embedded SQLite store in a fresh folder, default argon2: item 2 is about
# its real cost) on loopback, and runs sbabuse against it: items 1, 2, 3, 5
# and 6 of the issue, one after the other, while the node's RSS
# (/proc/PID/status) and its /healthz latency are sampled every 50 ms. The
# table goes to stdout and to RESULTS/table.md, with summary.json (every
# phase, its answers and notes), series.csv (every sample) and the node's log.
#
#   scripts/bench-abuse.sh [--results DIR] [--items 1,2,3,5,6] [--tiny] [--node-flags "..."]
#
# Takes about 5 minutes on 2 cores at the issue's sizes; --tiny runs in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

results="${TMPDIR:-/tmp}/switchboard-bench/abuse-$(date -u +%Y%m%dT%H%M%SZ)"
items=1,2,3,5,6
tiny=()
node_flags=""
while [ $# -gt 0 ]; do
  case "$1" in
    --results) results="$2"; shift 2 ;;
    --items) items="$2"; shift 2 ;;
    --tiny) tiny=(--tiny); shift ;;
    --node-flags) node_flags="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench-abuse: unknown argument $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$results"
echo "bench-abuse: building switchboard and sbabuse (release: -trimpath)"
go build -trimpath -o "$work/switchboard" ./cmd/switchboard
go build -trimpath -o "$work/sbabuse" ./cmd/sbabuse

{
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "machine $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), $(go version)"
  echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "node flags: --addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --data-dir DIR ${node_flags:-(defaults otherwise)}"
} | tee "$results/machine.txt"

mkdir -p "$work/data"
# shellcheck disable=SC2086 # node_flags is a list of flags
start_node "$results/node.log" --addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --data-dir "$work/data" $node_flags
echo "bench-abuse: node $node_pid at $node_url (admin $node_admin); results in $results"

"$work/sbabuse" --target "$node_url" --pid "$node_pid" --admin "$node_admin" --items "$items" "${tiny[@]}" --out "$results" \
  2> >(tee "$results/sbabuse.log" >&2)

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results/machine.txt"
echo "store on disk: $(du -sh "$work/data" | cut -f1)" | tee -a "$results/machine.txt"
