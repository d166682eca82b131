# Shared by the bench scripts (sourced, not run): a private PostgreSQL and a
# node process, both stopped by bench_cleanup. Callers set $work (a fresh
# temporary folder) and trap bench_cleanup on EXIT.

pgbin=""
pgport=""
redis_pid=""
redisport=""
node_pid=""
prom_pid=""
prom_url=""

# start_private_pg starts PostgreSQL (fsync on) in $work/pg on a free
# loopback port, as the postgres user, and sets pgbin and pgport.
start_private_pg() {
  pgbin=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
  pgport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  chmod 755 "$work"; mkdir -p "$work/pg"; chown postgres: "$work/pg"
  runuser -u postgres -- "$pgbin/initdb" -D "$work/pg" --auth=trust -U postgres -E UTF8 >/dev/null
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w \
    -o "-p $pgport -c listen_addresses=127.0.0.1 -c unix_socket_directories=$work/pg -c max_connections=200 $*" start >/dev/null
}

# start_private_redis starts redis-server (no persistence) in $work/redis on
# a free loopback port and sets redisport.
start_private_redis() {
  redisport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$work/redis"
  redis-server --bind 127.0.0.1 --port "$redisport" --dir "$work/redis" --save '' --appendonly no \
    --logfile "$work/redis/log" &
  redis_pid=$!
  for _ in $(seq 1 100); do
    redis-cli -h 127.0.0.1 -p "$redisport" ping >/dev/null 2>&1 && return 0
    kill -0 "$redis_pid" 2>/dev/null || { echo "redis-server exited:"; cat "$work/redis/log"; return 1; }
    sleep 0.1
  done
  echo "redis-server did not answer"; return 1
}

# create_db NAME creates a database on the private server and prints its URL.
create_db() {
  "$pgbin/psql" -q -h 127.0.0.1 -p "$pgport" -U postgres -c "CREATE DATABASE $1"
  echo "postgres://postgres@127.0.0.1:$pgport/$1"
}

# start_node LOG ARGS... starts the node binary $work/switchboard with ARGS,
# logging to LOG, waits for the URL it logs and sets node_pid, node_url and
# node_admin (the admin listener's URL, for /metrics and /debug/pprof: pass
# --admin-addr 127.0.0.1:0 so that nodes on one host do not share 9464).
start_node() {
  local log=$1; shift
  "$work/switchboard" "$@" >"$log" 2>&1 &
  node_pid=$!
  node_url=""
  for _ in $(seq 1 100); do
    node_url=$(grep -o ' url=http://[^ ]*' "$log" | head -1 | cut -d= -f2 || true)
    node_admin=$(grep -o ' admin=http://[^ ]*' "$log" | head -1 | cut -d= -f2 || true)
    [ -n "$node_url" ] && return 0
    kill -0 "$node_pid" 2>/dev/null || { echo "the node exited:"; cat "$log"; return 1; }
    sleep 0.1
  done
  echo "the node did not log its URL"; return 1
}

# stop_node stops the node started last: SIGTERM, then SIGKILL after 15 s.
stop_node() {
  if [ -n "$node_pid" ] && kill -0 "$node_pid" 2>/dev/null; then
    kill -TERM "$node_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  node_pid=""
}

bench_cleanup() {
  stop_node
  if [ -n "$prom_pid" ]; then kill "$prom_pid" 2>/dev/null || true; wait "$prom_pid" 2>/dev/null || true; fi
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  if [ -n "$pgbin" ]; then runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}

# --- several nodes behind a private NGINX (scripts/bench-cluster.sh) ---

cluster_pids=()
cluster_urls=()
cluster_admins=()
nginx_pid=""
nginx_url=""
nginx_dir=""

# start_cluster_node LOG ARGS... starts one more node like start_node and
# adds it to cluster_pids, cluster_urls and cluster_admins (stop_cluster
# stops them all).
start_cluster_node() {
  start_node "$@" || return 1
  cluster_pids+=("$node_pid")
  cluster_urls+=("$node_url")
  cluster_admins+=("$node_admin")
  node_pid=""   # owned by stop_cluster now, not by stop_node
}

# start_private_nginx WORKERS NODE_URL... renders deploy/nginx/switchboard.conf
# with $work/sbload nginx-conf for a private NGINX in $work/nginx on a free
# loopback port, in front of the nodes, with WORKERS worker processes, and
# starts it in the foreground (daemon off) in the background of this shell;
# sets nginx_pid, nginx_url and nginx_dir. With nginx_bind_addrs set (A,B,...)
# its sockets' connections to the nodes leave from those addresses (proxy_bind).
nginx_bind_addrs=""
start_private_nginx() {
  local workers=$1; shift
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  nginx_dir="$work/nginx"
  mkdir -p "$nginx_dir"
  local user=() bind=()
  [ "$(id -u)" = 0 ] && user=(--user root)   # workers must enter $work (0700)
  [ -n "$nginx_bind_addrs" ] && bind=(--bind-addrs "$nginx_bind_addrs")
  "$work/sbload" nginx-conf --dir "$nginx_dir" --listen "127.0.0.1:$port" --workers "$workers" "${user[@]}" "${bind[@]}" "$@" >"$nginx_dir/nginx.conf"
  nginx -p "$nginx_dir" -c "$nginx_dir/nginx.conf" -e "$nginx_dir/error.log" &
  nginx_pid=$!
  nginx_url="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    [ -s "$nginx_dir/nginx.pid" ] && curl -s -o /dev/null "$nginx_url/healthz" && return 0
    kill -0 "$nginx_pid" 2>/dev/null || { echo "nginx exited:"; cat "$nginx_dir/error.log"; return 1; }
    sleep 0.1
  done
  echo "nginx did not answer on $nginx_url"; cat "$nginx_dir/error.log"; return 1
}

# nginx_workers_rss_kb prints the summed RSS (KiB) of the NGINX workers.
nginx_workers_rss_kb() {
  ps -o rss= --ppid "$nginx_pid" 2>/dev/null | awk '{s += $1} END {print s + 0}'
}

# nginx_workers_private_kb prints the summed private memory (KiB:
# Private_Clean + Private_Dirty of smaps_rollup) of the NGINX workers: RSS
# without the pages each worker shares with the master.
nginx_workers_private_kb() {
  local pid s=0
  for pid in $(ps -o pid= --ppid "$nginx_pid" 2>/dev/null); do
    s=$((s + $(awk '/^Private_(Clean|Dirty):/ {t += $2} END {print t + 0}' "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0)))
  done
  echo "$s"
}

# sockstat_tcp FIELD prints a number of the TCP line of /proc/net/sockstat
# (inuse, orphan, tw, alloc, mem; mem is in pages).
sockstat_tcp() {
  awk -v f="$1" '$1 == "TCP:" {for (i = 2; i < NF; i++) if ($i == f) print $(i + 1)}' /proc/net/sockstat
}

# meminfo_kb FIELD prints a /proc/meminfo value in KiB (Slab, MemAvailable, ...).
meminfo_kb() {
  awk -v f="$1:" '$1 == f {print $2}' /proc/meminfo
}

# node_metric ADMIN_URL NAME prints one unlabelled sample of the node's
# /metrics (on its admin listener) as an integer (empty when the node does
# not answer).
node_metric() {
  curl -s --max-time 5 "$1/metrics" | awk -v n="$2" '$1 == n {printf "%.0f\n", $2}'
}

# stop_cluster stops the private NGINX (fast shutdown) and every cluster
# node (SIGTERM, then SIGKILL after 15 s).
stop_cluster() {
  if [ -n "$nginx_pid" ]; then
    kill -TERM "$nginx_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=""
  fi
  local pid
  for pid in "${cluster_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${cluster_pids[@]}"; do
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  cluster_pids=()
}

# start_private_prometheus ADMIN_URL... renders deploy/prometheus for a
# private Prometheus in $work/prometheus (1 s scrapes of the nodes' admin
# listeners, the shipped recording and alert rules) on a free loopback
# port, and sets prom_pid and prom_url (bench_cleanup stops it).
start_private_prometheus() {
  local port dir="$work/prometheus"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkdir -p "$dir"
  "$work/sbload" prometheus-conf --dir "$dir" --interval 1s "$@"
  prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$port" >"$dir/log" 2>&1 &
  prom_pid=$!
  prom_url="http://127.0.0.1:$port"
  for _ in $(seq 1 300); do
    curl -sf -o /dev/null "$prom_url/-/ready" && return 0
    kill -0 "$prom_pid" 2>/dev/null || { echo "prometheus exited:"; cat "$dir/log"; return 1; }
    sleep 0.1
  done
  echo "prometheus did not answer on $prom_url"; return 1
}
