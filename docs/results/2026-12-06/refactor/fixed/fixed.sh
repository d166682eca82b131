#!/usr/bin/env bash
# e643155 (before) vs main at dc55c4d (the expiry sweep instead of the timer), same memory command, A B A B.
set -u
R=/work/wt/bench/docs/results/2026-12-06/refactor/fixed
mkdir -p $R
for i in 1 2; do
  for w in before main; do
    t=/work/wt/base; [ $w = main ] && t=/tmp/hb/t-main
    echo "memory $w-$i start $(date -u +%T) $(uptime | sed 's/.*load average/load average/')" | tee -a $R/load.txt
    (cd $t && scripts/bench-memory.sh --store postgres --node-flags "--gc-percent 25" --steps "5000 10000" --hold 15s \
      --results $R/mem-$w-$i) > $R/mem-$w-$i.log.txt 2>&1; rc=$?
    echo "memory $w-$i end $(date -u +%T) rc $rc $(uptime | sed 's/.*load average/load average/')" | tee -a $R/load.txt
  done
done
