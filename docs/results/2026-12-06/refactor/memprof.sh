#!/usr/bin/env bash
# Heap profiles of the node at 0 and at 5,000 idle sockets, before and after (fine sampling).
set -u
R=/work/wt/bench/docs/results/2026-12-06/refactor/memprof
mkdir -p $R
for w in before after; do
  t=/work/wt/bench; [ $w = before ] && t=/work/wt/base
  out=$R/mem-$w.out
  echo "memprof $w start $(date -u +%T) $(uptime | sed 's/.*load average/load average/')" | tee -a $R/load.txt
  (cd $t && GODEBUG=memprofilerate=64 scripts/bench-memory.sh --store postgres --node-flags "--gc-percent 25 --pprof" --steps 5000 --hold 40s --results $R/$w) > $out 2>&1 &
  pid=$!
  url=""
  for _ in $(seq 1 600); do url=$(grep -o 'against http://[^ ]*' $out | head -1 | cut -d' ' -f2); [ -n "$url" ] && break; sleep 0.2; done
  curl -s -o $R/heap0-$w.pprof "$url/debug/pprof/heap?gc=1"
  sleep 40
  curl -s -o $R/heapN-$w.pprof "$url/debug/pprof/heap?gc=1"
  wait $pid
  echo "memprof $w end $(date -u +%T) $(uptime | sed 's/.*load average/load average/')" | tee -a $R/load.txt
done
