#!/usr/bin/env bash
cd /tmp/cb/cache
for r in 1 2 3 4 5 6; do
  order="fork cache"; [ $((r%2)) = 0 ] && order="cache fork"
  for v in $order; do
    echo "$(date -u +%T) round $r $v $(cut -d' ' -f1-3 /proc/loadavg)" >> loads.txt
    /tmp/cb/cluster-$v.test -test.run XXX -test.bench 'ClusterAppend/engine=(pebble|leveldb)/nodes=3/size=100B/appenders=1/batch=1000' -test.benchtime 1000x 2>/dev/null | grep '^Bench.*batch' >> inproc-$v.txt
    /tmp/cb/cluster-$v.test -test.run XXX -test.bench 'ClusterProduce/engine=pebble/nodes=3/size=100B/producers=1/batch=1000' -test.benchtime 1000x 2>/dev/null | grep '^Bench' >> inproc-$v.txt
    SYSTEMS='^cluster3-goethe-pebble$' /tmp/cb/e2e.sh /tmp/cb/goethe-$v /tmp/cb/cache/e2e/$v-$r | sed "s/^/$v $r /" >> e2e.txt
  done
done
