#!/usr/bin/env bash
set -u
R=/work/wt/bench/docs/results/2026-12-06/refactor
for w in before after; do
  t=/work/wt/bench; [ $w = before ] && t=/work/wt/base
  echo "fanout $w-p start $(date -u +%T) $(uptime | sed 's/.*load average/load average/')" | tee -a $R/load.txt
  (cd $t && scripts/bench-fanout.sh --name g10x500-r2-$w-p --profile 10 --results $R/fanout --node-flags "--flush-delay 0" -- \
      --groups 10 --group-size 50 --devices-per-user 10 --senders 10 --rate 2 --ramp 10s --hold 30s) > $R/fanout-$w-p.out 2>&1; rc=$?
  echo "fanout $w-p end $(date -u +%T) rc $rc $(uptime | sed 's/.*load average/load average/')" | tee -a $R/load.txt
done
