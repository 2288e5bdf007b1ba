#!/usr/bin/env bash
# inproc3.sh ROUNDS OUT V1 V2 ...: interleaved in-process rounds of 3-node (b), order rotating.
set -uo pipefail
rounds=$1; out=$2; shift 2
vs=("$@")
for r in $(seq 1 $rounds); do
  n=${#vs[@]}; order=()
  for i in $(seq 0 $((n-1))); do order+=("${vs[$(( (i + r) % n ))]}"); done
  for v in "${order[@]}"; do
    echo "$(date -u +%T) round $r $v $(cut -d' ' -f1-3 /proc/loadavg)" >> $out-loads.txt
    flock /work/bench.lock /tmp/cpuw/cluster-$v.test -test.run XXX \
      -test.bench 'ClusterAppend/engine=pebble/nodes=3/size=100B/appenders=1/batch=1000|ClusterProduce/engine=pebble/nodes=3/size=100B/producers=1/batch=1000' \
      -test.benchtime 1000x -test.benchmem 2>/dev/null | grep "^Bench" >> $out-$v.txt
  done
done
