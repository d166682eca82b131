#!/usr/bin/env bash
# 232afe7^ vs 232afe7 (the expiry timer alone), same memory command, A B A B.
set -u
R=/work/wt/bench/docs/results/2026-12-06/refactor/isolate
mkdir -p $R
for i in 1 2; do
  for w in pre post; do
    echo "memory $w-$i start $(date -u +%T) $(uptime | sed 's/.*load average/load average/')" | tee -a $R/load.txt
    (cd /tmp/hb/t-$w && scripts/bench-memory.sh --store postgres --node-flags "--gc-percent 25" --steps "5000 10000" --hold 15s \
      --results $R/mem-$w-$i) > $R/mem-$w-$i.log.txt 2>&1; rc=$?
    echo "memory $w-$i end $(date -u +%T) rc $rc $(uptime | sed 's/.*load average/load average/')" | tee -a $R/load.txt
  done
done
