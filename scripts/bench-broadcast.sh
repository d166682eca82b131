#!/usr/bin/env bash
# Broadcast efficiency: switchboard's full path (auth, store, bus) against
# the bare ceiling of its own socket layer, in the same run, with the same
# client.
#
# For each connection count N (default 5000 and 19500) it runs sbload's
# broadcast scenario twice with the same settings: first against sbbare (a
# minimal broadcast server on internal/gateway: tokens in memory, every send
# written to every other socket in a plain loop), then against a fresh node
# (fresh SQLite data folder, cheap password hashing, --max-members 100000).
# In each, all N devices connect, then --rounds rounds run one at a time: one
# device sends one message (a shared ciphertext) to a group of every user,
# every other socket must receive it once; a round's rate is (N-1) / (last
# receive - send), reported as the median over the rounds, with the latency
# of every delivery. Summaries (JSON), logs and a table go to the results
# folder.
#
#   scripts/bench-broadcast.sh [--steps "5000 19500"] [--rounds 20] [--connect-rate 250] [--payload 200]
#                              [--pollers 1] [--results DIR] [--node-flags "..."] [--profile SECONDS] [--syscalls]
#
# --connect-rate is sockets opened per second (the ramp lasts N / rate): a
# node's connect reads the device and its backlog from the store, and every
# device here is in one group of N/10 users, which costs ~2 ms of node CPU
# per connect at 19,500; at 250/s some sockets timed out (30 s) there.
#
# --profile S also takes a CPU profile (Go pprof, S seconds, started once all
# sockets are open, so it covers the rounds) of both servers: the node runs
# with --pprof, sbbare too. Profiling costs a little CPU; compare rates from
# runs without it.
#
# --syscalls counts each server's system calls (perf stat on its syscall
# tracepoints: write, writev, read, epoll_wait, futex) from the moment it
# holds all sockets to the end of the rounds; needs perf (linux-perf).
#
# The node runs with cheap password hashing (--argon2-time 1
# --argon2-memory 64): logins are setup here, not what is measured. Node
# limits per client address or per user (logins, signups, sockets, devices)
# are turned off: sbload logs in and connects every device from loopback.
# Other limits (per socket, device, conversation) are listed and kept; the
# scenario stays far below them. --node-flags adds any flag.
set -euo pipefail
# Background jobs get their own process group: a stop (Ctrl-C, TERM) ends a
# run in progress, with its workers, at once.
set -m
cd "$(dirname "$0")/.."

steps="5000 19500"
rounds=20
connect_rate=150
payload=200
pollers=1
node_flags=""
profile=0
syscalls=0
results="${TMPDIR:-/tmp}/switchboard-bench/broadcast-$(date -u +%Y%m%dT%H%M%SZ)"
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --connect-rate) connect_rate="$2"; shift 2 ;;
    --payload) payload="$2"; shift 2 ;;
    --pollers) pollers="$2"; shift 2 ;;
    --node-flags) node_flags="$2"; shift 2 ;;
    --profile) profile="$2"; shift 2 ;;
    --syscalls) syscalls=1; shift ;;
    --results) results="$2"; shift 2 ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "bench-broadcast: unknown argument $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d)
srv_pid=""
prof_pid=""
perf_pid=""
load_pid=""
# stop_perf ends a syscall count (perf stat prints its totals on SIGINT).
stop_perf() {
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid" 2>/dev/null || true
    wait "$perf_pid" 2>/dev/null || true
    perf_pid=""
  fi
}
stop_load() {
  if [ -n "$load_pid" ]; then
    kill -TERM -- "-$load_pid" 2>/dev/null || true
    wait "$load_pid" 2>/dev/null || true
    load_pid=""
  fi
}
stop_server() {
  if [ -n "$prof_pid" ]; then
    # let a profile that started finish (it may outlast short rounds)
    for _ in $(seq 1 $(( (profile + 10) * 10 ))); do kill -0 "$prof_pid" 2>/dev/null || break; sleep 0.1; done
    kill "$prof_pid" 2>/dev/null || true
    wait "$prof_pid" 2>/dev/null || true
    prof_pid=""
  fi
  if [ -n "$srv_pid" ] && kill -0 "$srv_pid" 2>/dev/null; then
    kill -TERM "$srv_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
  fi
  srv_pid=""
}
cleanup() {
  trap '' INT TERM # a second signal must not cut the cleanup short
  stop_load
  stop_perf
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$results"
echo "bench-broadcast: building switchboard, sbbare and sbload"
go build -o "$work/switchboard" ./cmd/switchboard
go build -o "$work/sbbare" ./cmd/sbbare
go build -o "$work/sbload" ./cmd/sbload

# Limits per client address or per user would refuse a load generator that
# logs in and connects thousands of devices from loopback: turn off those
# (a limit flag says "0 = unlimited" or "off" in its help), and list the
# other limits, which stay at their defaults.
limit_flags=()
while IFS='|' read -r name help; do
  if echo "$help" | grep -qE '0 = unlimited'; then off=0
  elif echo "$help" | grep -qE '"off"'; then off=off
  else continue
  fi
  if echo "$help" | grep -qiE 'per (client )?(address|ip)|per user|per username|per account|of one user'; then
    limit_flags+=("--$name" "$off")
  else
    echo "bench-broadcast: node limit --$name stays at its default:$help"
  fi
done < <("$work/switchboard" --help 2>&1 | awk '
  /^  -[a-z]/ { if (name != "") print name "|" help; name = $1; sub(/^-/, "", name); help = ""; next }
  { gsub(/^[ \t]+/, ""); help = help " " $0 }
  END { if (name != "") print name "|" help }')
if [ ${#limit_flags[@]} -gt 0 ]; then echo "bench-broadcast: node limits turned off: ${limit_flags[*]}"; fi

echo "bench-broadcast: NOTE the node runs with cheap password hashing (--argon2-time 1 --argon2-memory 64); logins are not what is measured"
echo "bench-broadcast: machine $(nproc) cores, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), open files $(ulimit -Hn); results in $results"

# start_server NAME LOG BIN ARGS...: starts a server, sets srv_pid and url.
start_server() {
  local name=$1 log=$2 bin=$3
  shift 3
  "$bin" "$@" >"$log" 2>&1 &
  srv_pid=$!
  url=""
  for _ in $(seq 1 100); do
    url=$(grep -o ' url=http://[^ ]*' "$log" | head -1 | cut -d= -f2 || true)
    # A node serves /metrics and pprof on its admin listener; sbbare on url.
    admin=$(grep -o ' admin=http://[^ ]*' "$log" | head -1 | cut -d= -f2 || true)
    [ -n "$admin" ] || admin=$url
    [ -n "$url" ] && return 0
    kill -0 "$srv_pid" 2>/dev/null || { echo "bench-broadcast: $name exited:"; cat "$log"; exit 1; }
    sleep 0.1
  done
  echo "bench-broadcast: $name did not log its URL"; exit 1
}

# wait_full URL SOCKETS_METRIC N: waits (at most 10 minutes) until the
# server at URL holds 99 % of N sockets; the rounds start when the ramp is over.
wait_full() {
  local u=$1 metric=$2 n=$3 open
  for _ in $(seq 1 3000); do
    open=$(curl -sf "$u/metrics" | awk -v m="$metric" '$1 == m {print int($2)}' || true)
    [ -n "$open" ] && [ "$open" -ge $(( n * 99 / 100 )) ] && return 0
    sleep 0.2
  done
}

# profile_when_full OUT SOCKETS_METRIC N: in the background, waits until the
# server holds 99 % of N sockets (the rounds start when the ramp is over),
# then takes a CPU profile of $profile seconds.
profile_when_full() {
  local out=$1 metric=$2 n=$3 u=$admin
  (
    wait_full "$u" "$metric" "$n"
    curl -sf -o "$out" "$u/debug/pprof/profile?seconds=$profile" || echo "bench-broadcast: no profile from $u" >&2
  ) &
  prof_pid=$!
}

# count_syscalls_when_full OUT SOCKETS_METRIC N: in the background, waits
# until the server holds 99 % of N sockets, then counts its system calls with
# perf stat until stop_perf (after the rounds), into OUT.
count_syscalls_when_full() {
  local out=$1 metric=$2 n=$3 u=$admin pid=$srv_pid
  (
    wait_full "$u" "$metric" "$n"
    exec perf stat -o "$out" -p "$pid" -e syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex
  ) &
  perf_pid=$!
}

# run_load KIND N: the broadcast scenario against $url, same settings for both.
run_load() {
  local kind=$1 n=$2
  local ramp=$(( (n + connect_rate - 1) / connect_rate ))s
  # Bounded: provisioning, the ramp, the rounds (each at most --round-timeout
  # but normally well under a second) and the drain.
  # In the background and waited for, so a signal reaches the trap at once.
  (timeout --foreground 30m "$work/sbload" run --target "$url" --metrics "$admin/metrics" --scenario broadcast --conns "$n" --procs 1 \
    --pollers "$pollers" --ramp "$ramp" --hold 10m --rounds "$rounds" --round-timeout 10s --payload "$payload" \
    --out "$results/$kind-$n.json" --series "$results/$kind-$n.series.jsonl" \
    2>&1 | tee "$results/sbload-$kind-$n.log") &
  load_pid=$!
  wait "$load_pid"
  load_pid=""
}

pairs=()
for n in $steps; do
  echo "bench-broadcast: N=$n, bare broadcast server"
  args=(--addr 127.0.0.1:0)
  if [ "$profile" -gt 0 ]; then args+=(--pprof); fi
  start_server sbbare "$results/bare-$n.log" "$work/sbbare" "${args[@]}"
  if [ "$profile" -gt 0 ]; then profile_when_full "$results/bare-$n.cpu.pprof" sbbare_sockets_open "$n"; fi
  if [ "$syscalls" = 1 ]; then count_syscalls_when_full "$results/bare-$n.syscalls.txt" sbbare_sockets_open "$n"; fi
  run_load bare "$n"
  stop_perf
  stop_server

  echo "bench-broadcast: N=$n, switchboard node (fresh SQLite)"
  data="$work/data-$n"
  mkdir -p "$data"
  args=(--addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --data-dir "$data" --argon2-time 1 --argon2-memory 64 --max-members 100000 "${limit_flags[@]}")
  if [ "$profile" -gt 0 ]; then args+=(--pprof); fi
  # shellcheck disable=SC2206 # node_flags is split on purpose
  args+=($node_flags)
  start_server switchboard "$results/node-$n.log" "$work/switchboard" "${args[@]}"
  if [ "$profile" -gt 0 ]; then profile_when_full "$results/full-$n.cpu.pprof" switchboard_ws_connections "$n"; fi
  if [ "$syscalls" = 1 ]; then count_syscalls_when_full "$results/full-$n.syscalls.txt" switchboard_ws_connections "$n"; fi
  run_load full "$n"
  stop_perf
  stop_server
  rm -rf "$data"
  pairs+=("$results/bare-$n.json" "$results/full-$n.json")
done

echo
echo "broadcast: one frame to every socket, bare socket layer (sbbare) vs the full node; median over $rounds rounds, deliveries/s = (N-1) / (last receive - send)"
"$work/sbload" broadcast-table "${pairs[@]}" | tee "$results/table.txt"
"$work/sbload" broadcast-table --json "${pairs[@]}" >"$results/broadcast.json"
if [ "$profile" -gt 0 ]; then
  for p in "$results"/*.cpu.pprof; do
    [ -s "$p" ] && go tool pprof -top -nodecount 40 "$p" >"${p%.pprof}.top.txt" 2>/dev/null || true
  done
  echo "profiles: $results/*.cpu.pprof (top: *.cpu.top.txt)"
fi
if [ "$syscalls" = 1 ]; then
  echo "system calls of each server from a full house to the end of the rounds ($rounds rounds of N-1 deliveries):"
  for f in "$results"/*.syscalls.txt; do echo "== $f"; grep -E 'syscalls:|seconds time' "$f" || true; done
fi
echo "summaries: ${pairs[*]}; table: $results/table.txt; JSON: $results/broadcast.json"
