#!/usr/bin/env bash
# Group-chat fan-out (and durable sends end to end) through one switchboard node.
#
# Starts a fresh store (a private PostgreSQL with fsync on, or SQLite) and a
# fresh node, runs `sbload run --scenario fanout` with the flags after --,
# and writes the JSON summary, a per-second series, the node's log and, with
# --profile, a CPU profile of the node taken in the middle of the steady
# phase. Run it once per row of docs/benchmarks.md. `--scenario chat` among
# the flags after -- runs the chat mix instead (the last --scenario wins).
#
#   scripts/bench-fanout.sh [--store postgres|sqlite] [--bus inmem|redis] [--name NAME] [--results DIR]
#                           [--node-flags "..."] [--pool N] [--profile SECONDS] -- SBLOAD_FLAGS...
#
#   scripts/bench-fanout.sh --name groups-rate2 -- --groups 10 --group-size 50 --devices-per-user 10 \
#       --senders 10 --rate 2 --ramp 10s --hold 30s
#   scripts/bench-fanout.sh --name chat -- --scenario chat --conns 19500 --procs 2 --devices-per-user 3 \
#       --dms 2 --small-group 8 --large-group 500 --chat-rate 300 --churn 20 --payload 300 --ramp 20s --hold 60s
#
# The node runs with cheap password hashing (logins are set-up here, not what
# is measured), a member limit of 2,000 and no per-conversation send limit
# (the per-device limit stays: 50 sends/s). --pool sets pool_max_conns of
# the PostgreSQL pool (default 32). --bus redis starts a private
# redis-server (no persistence, a free loopback port) and runs the node with
# --redis on it; the default is the node's in-process bus.
set -euo pipefail
cd "$(dirname "$0")/.."

store=postgres
bus=inmem
name=fanout
node_flags=""
pool=32
profile=0
results="${TMPDIR:-/tmp}/switchboard-bench/fanout-$(date -u +%Y%m%dT%H%M%SZ)"
while [ $# -gt 0 ]; do
  case "$1" in
    --store) store="$2"; shift 2 ;;
    --bus) bus="$2"; shift 2 ;;
    --name) name="$2"; shift 2 ;;
    --results) results="$2"; shift 2 ;;
    --node-flags) node_flags="$2"; shift 2 ;;
    --pool) pool="$2"; shift 2 ;;
    --profile) profile="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    *) echo "bench-fanout: unknown argument $1 (sbload's flags go after --)" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
# shellcheck source=scripts/lib/bench.sh
. scripts/lib/bench.sh
trap bench_cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$results"
echo "bench-fanout: building switchboard and sbload"
go build -o "$work/switchboard" ./cmd/switchboard
go build -o "$work/sbload" ./cmd/sbload
echo "bench-fanout: machine $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo); results in $results"

store_flags=()
case "$store" in
  postgres)
    start_private_pg
    store_flags=(--db "$(create_db sbfanout)?pool_max_conns=$pool")
    echo "bench-fanout: private PostgreSQL on 127.0.0.1:$pgport (fsync on), pool_max_conns=$pool" ;;
  sqlite) ;;
  *) echo "bench-fanout: --store is postgres or sqlite" >&2; exit 2 ;;
esac

case "$bus" in
  redis)
    start_private_redis
    store_flags+=(--redis "redis://127.0.0.1:$redisport/0")
    echo "bench-fanout: private redis-server on 127.0.0.1:$redisport" ;;
  inmem) ;;
  *) echo "bench-fanout: --bus is inmem or redis" >&2; exit 2 ;;
esac

# shellcheck disable=SC2086 # node_flags is a list of flags
start_node "$results/node-$name.log" --addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --data-dir "$work/data" "${store_flags[@]}" \
  --argon2-time 1 --argon2-memory 64 --max-members 2000 --send-rate-conversation 0 --pprof $node_flags
echo "bench-fanout: node at $node_url, flags: ${node_flags:-none}"

profile_pid=""
if [ "$profile" != 0 ]; then
  # The steady phase starts after provisioning and the ramp: wait for the
  # first send, then for a few seconds more, and profile.
  (
    for _ in $(seq 1 600); do
      grep -q 'sent_ok [1-9]' "$results/sbload-$name.log" 2>/dev/null && break
      sleep 1
    done
    sleep 5
    curl -s -o "$results/cpu-$name.pprof" "$node_admin/debug/pprof/profile?seconds=$profile" &&
      echo "bench-fanout: CPU profile in $results/cpu-$name.pprof"
  ) &
  profile_pid=$!
fi

"$work/sbload" run --target "$node_url" --metrics "$node_admin/metrics" --scenario fanout --out "$results/$name.json" \
  --series "$results/$name.series.jsonl" "$@" 2>&1 | tee "$results/sbload-$name.log"
if [ -n "$profile_pid" ]; then wait "$profile_pid" || true; fi
echo "summary: $results/$name.json"
