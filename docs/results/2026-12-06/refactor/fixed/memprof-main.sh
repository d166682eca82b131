#!/usr/bin/env bash
# Heap profiles of main at dc55c4d at 0 and at 5,000 idle sockets (fine sampling), as memprof.sh did for before and after.
set -u
R=/work/wt/bench/docs/results/2026-12-06/refactor/fixed/memprof
mkdir -p $R
out=$R/mem-main.log.txt
echo "memprof main start $(date -u +%T) $(uptime | sed 's/.*load average/load average/')" | tee -a $R/load.txt
(cd /tmp/hb/t-main && GODEBUG=memprofilerate=64 scripts/bench-memory.sh --store postgres --node-flags "--gc-percent 25 --pprof" --steps 5000 --hold 40s --results $R/main) > $out 2>&1 &
pid=$!
admin=""
for _ in $(seq 1 600); do admin=$(grep -ho 'admin=http://[^ ]*' $R/main/node-5000.log 2>/dev/null | head -1 | cut -d= -f2); [ -n "$admin" ] && break; sleep 0.2; done
echo "admin $admin" >> $R/load.txt
curl -s -o $R/heap0-main.pprof "$admin/debug/pprof/heap?gc=1"
sleep 40
curl -s -o $R/heapN-main.pprof "$admin/debug/pprof/heap?gc=1"
wait $pid
echo "memprof main end $(date -u +%T) $(uptime | sed 's/.*load average/load average/')" | tee -a $R/load.txt
