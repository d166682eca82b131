#!/usr/bin/env bash
# Fan-out (B A B A B A) then memory (B A B A), each tree with its own build.
set -u
R=/work/wt/bench/docs/results/2026-12-06/refactor
mkdir -p $R
tree() { [ "$1" = before ] && echo /work/wt/base || echo /work/wt/bench; }
for i in 1 2 3; do
  for w in before after; do
    echo "fanout $w-$i start $(date -u +%T) $(uptime | sed 's/.*load average/load average/')" | tee -a $R/load.txt
    (cd "$(tree $w)" && scripts/bench-fanout.sh --name g10x500-r2-$w-$i --results $R/fanout --node-flags "--flush-delay 0" -- \
      --groups 10 --group-size 50 --devices-per-user 10 --senders 10 --rate 2 --ramp 10s --hold 30s) > $R/fanout-$w-$i.out 2>&1; rc=$?
    echo "fanout $w-$i end $(date -u +%T) rc $rc $(uptime | sed 's/.*load average/load average/')" | tee -a $R/load.txt
  done
done
for i in 1 2; do
  for w in before after; do
    echo "memory $w-$i start $(date -u +%T) $(uptime | sed 's/.*load average/load average/')" | tee -a $R/load.txt
    (cd "$(tree $w)" && scripts/bench-memory.sh --store postgres --node-flags "--gc-percent 25" --steps "5000 10000" --hold 15s \
      --results $R/mem-$w-$i) > $R/mem-$w-$i.out 2>&1; rc=$?
    echo "memory $w-$i end $(date -u +%T) rc $rc $(uptime | sed 's/.*load average/load average/')" | tee -a $R/load.txt
  done
done
echo "all done $(date -u +%T)" | tee -a $R/load.txt
