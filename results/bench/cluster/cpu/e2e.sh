#!/usr/bin/env bash
# e2e.sh ROUNDS OUT V1 V2 [V3...]: workload (b) end to end, single node and 3 nodes
# (pebble), for /tmp/cpuw/goethe-V, in interleaved rounds (order rotates).
set -uo pipefail
rounds=$1; out=$2; shift 2
vs=("$@")
cd /work/wt-cluster-cpu/bench/peers
for r in $(seq 1 $rounds); do
  n=${#vs[@]}; order=()
  for i in $(seq 0 $((n-1))); do order+=("${vs[$(( (i + r) % n ))]}"); done
  for v in "${order[@]}"; do
    echo "$(date -u +%T) round $r $v $(cut -d' ' -f1-3 /proc/loadavg)" >> $out-loads.txt
    rm -rf /tmp/cpuw/e2ework
    flock /work/bench.lock /tmp/cpuw/cluster3 -out /tmp/cpuw/json/$(basename $out)-$v-$r -root /work/wt-cluster-cpu \
      -work /tmp/cpuw/e2ework -nats /nonexistent/nats-server -goethe /tmp/cpuw/goethe-$v \
      -systems '^(goethe-pebble|cluster3-goethe-pebble)$' -workloads '^b-100B$' -kills 0 -duration 4s 2>&1 \
      | grep 'ev/s' | sed "s/^/$v $r /" >> $out.txt
  done
done
