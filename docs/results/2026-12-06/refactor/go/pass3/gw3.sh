#!/usr/bin/env bash
# Third pass, gateway only: fixed iteration counts, CPU time (user+sys) of the
# whole test binary per run, 1x (setup only) and 20000x, alternating, plus one
# CPU profile each.
set -u
B=/tmp/hb/bin
OUT=/work/wt/bench/docs/results/2026-12-06/refactor/go/pass3
mkdir -p $OUT
for i in $(seq 1 6); do
  for t in base bench; do
    for n in 1 20000; do
      echo "gateway $i $t ${n}x $(date -u +%T) $(uptime | sed 's/.*load average/load average/')" >> $OUT/load.txt
      (cd /work/wt/$t/internal/gateway && /usr/bin/time -f "cpu user %U sys %S wall %e" -a -o $OUT/$t-cpu-$n.txt \
        $B/$t-gateway.test -test.run '^$' -test.bench 'WriteBroadcast/sockets=1000/frame=64B' -test.benchmem -test.benchtime ${n}x) >> $OUT/$t-$n.txt 2>&1
    done
  done
done
for t in base bench; do
  (cd /work/wt/$t/internal/gateway && $B/$t-gateway.test -test.run '^$' -test.bench 'WriteBroadcast/sockets=1000/frame=64B' -test.benchtime 20000x -test.cpuprofile $OUT/cpu-$t.pprof) >> $OUT/$t-prof.txt 2>&1
done
echo "done $(date -u +%T)" >> $OUT/load.txt
