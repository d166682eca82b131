#!/usr/bin/env bash
# Second pass: chat (20 alternations) and gateway (8 alternations), same binaries.
set -u
B=/tmp/hb/bin
OUT=/work/wt/bench/docs/results/2026-12-06/refactor/go/pass2
mkdir -p $OUT
for i in $(seq 1 20); do
  for t in base bench; do
    echo "chat round $i $t $(date -u +%T) $(uptime | sed 's/.*load average/load average/')" >> $OUT/load.txt
    (cd /work/wt/$t/internal/chat && $B/$t-chat.test -test.run '^$' -test.bench 'BusMessage500$|ActiveDevices1950$' -test.benchmem -test.benchtime 200ms) >> $OUT/$t.txt 2>&1
  done
done
for i in $(seq 1 8); do
  for t in base bench; do
    echo "gateway round $i $t $(date -u +%T) $(uptime | sed 's/.*load average/load average/')" >> $OUT/load.txt
    (cd /work/wt/$t/internal/gateway && $B/$t-gateway.test -test.run '^$' -test.bench 'WriteBroadcast$' -test.benchmem -test.benchtime 200ms) >> $OUT/$t.txt 2>&1
  done
done
echo "done $(date -u +%T)" >> $OUT/load.txt
