#!/usr/bin/env bash
# run.sh ROUNDS: workload (b) end to end (single node and 3 nodes, pebble)
# and in process (ClusterAppend/ClusterProduce batch=1000), for goethe
# built before (engine WAL on in cluster mode) and after (off), in
# interleaved rounds. Expects /tmp/nw/{goethe,cluster}-{before,after}*
# and /tmp/nw/cluster3 (see README.md). Writes *.txt here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${1:-6}
cd "$here"
for r in $(seq 1 "$rounds"); do
  order="before after"; [ $((r % 2)) = 0 ] && order="after before"
  for v in $order; do
    echo "$(date -u +%T) round $r $v $(cut -d' ' -f1-3 /proc/loadavg)" >> loads.txt
    flock /work/bench.lock /tmp/nw/cluster-$v.test -test.run XXX \
      -test.bench 'ClusterAppend/engine=pebble/nodes=3/size=100B/appenders=1/batch=1000|ClusterProduce/engine=pebble/nodes=3/size=100B/producers=1/batch=1000' \
      -test.benchtime 1000x 2>/dev/null | grep '^Bench' >> inproc-$v.txt
    rm -rf /tmp/nw/e2ework /tmp/nw/out-$v-$r
    (cd /work/main/bench/peers && flock /work/bench.lock /tmp/nw/cluster3 -out /tmp/nw/out-$v-$r -root /work/main \
      -work /tmp/nw/e2ework -nats /nonexistent/nats-server -goethe /tmp/nw/goethe-$v \
      -systems '^(goethe-pebble|cluster3-goethe-pebble)$' -workloads '^b-100B$' -kills 0 -duration 4s) 2>&1 \
      | sed "s/^/$v $r /" >> e2e.txt
  done
done
