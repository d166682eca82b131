#!/usr/bin/env bash
# Before (base, e643155) vs after (bench) Go hot-path benchmarks, test binaries run alternately.
set -u
B=/tmp/hb/bin
OUT=/work/wt/bench/docs/results/2026-12-06/refactor/go
mkdir -p $OUT
rounds=${ROUNDS:-10}
one() { # tree pkg bench benchtime
  local t=$1 p=$2 bench=$3 bt=$4
  (cd /work/wt/$t/internal/$p && $B/$t-$p.test -test.run '^$' -test.bench "$bench" -test.benchmem -test.benchtime "$bt" -test.count 1) >> $OUT/$t.txt 2>&1
}
for i in $(seq 1 $rounds); do
  for t in base bench; do
    echo "round $i $t $(date -u +%T) $(uptime | sed 's/.*load average/load average/')" | tee -a $OUT/load.txt
    one $t server 'Sequencer$' 200ms
    one $t gateway 'WriteBroadcast$' 200ms
    one $t chat 'BusMessage500$|ActiveDevices1950$' 200ms
    one $t redisbus 'Publish/bus$' 50000x
  done
done
for i in $(seq 1 ${SQLROUNDS:-12}); do
  for t in base bench; do
    echo "sqlite round $i $t $(date -u +%T) $(uptime | sed 's/.*load average/load average/')" | tee -a $OUT/load.txt
    (cd /work/wt/$t/internal/sqlite && $B/$t-sqlite.test -test.run '^$' -test.bench 'AppendShared/1x500/sequential$' -test.benchmem -test.benchtime 500ms -test.count 1) >> $OUT/sqlite-$t.txt 2>&1
  done
done
echo done $(date -u +%T) | tee -a $OUT/load.txt
