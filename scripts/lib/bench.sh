# Shared by the bench scripts (sourced, not run): a private PostgreSQL and a
# node process, both stopped by bench_cleanup. Callers set $work (a fresh
# temporary folder) and trap bench_cleanup on EXIT.

pgbin=""
pgport=""
redis_pid=""
redisport=""
node_pid=""

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
# logging to LOG, waits for the URL it logs and sets node_pid and node_url.
start_node() {
  local log=$1; shift
  "$work/switchboard" "$@" >"$log" 2>&1 &
  node_pid=$!
  node_url=""
  for _ in $(seq 1 100); do
    node_url=$(grep -o 'url=http://[^ ]*' "$log" | head -1 | cut -d= -f2 || true)
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
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
  if [ -n "$pgbin" ]; then runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
