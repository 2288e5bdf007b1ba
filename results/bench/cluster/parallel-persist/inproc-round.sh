#!/usr/bin/env bash
# one interleaved round: up then fork (or reversed with REV=1)
set -u
cd /tmp/cb/final
round=$1
order="up fork"; [ "${REV:-0}" = 1 ] && order="fork up"
for v in $order; do
  echo "$(date -u +%T) round $round $v $(cut -d' ' -f1-3 /proc/loadavg)" >> loads.txt
  /tmp/cb/cluster-$v.test -test.run XXX -test.bench 'ClusterAppend/engine=(pebble|leveldb)/nodes=./size=100B/appenders=1/batch=1000' -test.benchtime 1000x 2>/dev/null | grep '^Bench' >> inproc-$v.txt
  /tmp/cb/cluster-$v.test -test.run XXX -test.bench 'ClusterAppend/engine=(pebble|leveldb)/nodes=3/size=100B/appenders=16' -test.benchtime 3000x 2>/dev/null | grep '^Bench' >> inproc-$v.txt
  /tmp/cb/cluster-$v.test -test.run XXX -test.bench 'ClusterProduce/engine=pebble/nodes=3/size=100B/producers=1/batch=1000' -test.benchtime 1000x 2>/dev/null | grep '^Bench' >> inproc-$v.txt
done
