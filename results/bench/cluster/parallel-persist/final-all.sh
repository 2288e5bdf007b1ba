#!/usr/bin/env bash
cd /tmp/cb/final2
inproc() { # round
  order="up final"; [ $(($1%2)) = 0 ] && order="final up"
  for v in $order; do
    echo "$(date -u +%T) round $1 $v $(cut -d' ' -f1-3 /proc/loadavg)" >> loads.txt
    /tmp/cb/cluster-$v.test -test.run XXX -test.bench 'ClusterAppend/engine=(pebble|leveldb)/nodes=./size=100B/appenders=1/batch=1000' -test.benchtime 1000x 2>/dev/null | grep '^Bench' >> inproc-$v.txt
    /tmp/cb/cluster-$v.test -test.run XXX -test.bench 'ClusterAppend/engine=(pebble|leveldb)/nodes=3/size=100B/appenders=16' -test.benchtime 3000x 2>/dev/null | grep '^Bench' >> inproc-$v.txt
    /tmp/cb/cluster-$v.test -test.run XXX -test.bench 'ClusterProduce/engine=pebble/nodes=3/size=100B/producers=1/batch=1000' -test.benchtime 1000x 2>/dev/null | grep '^Bench' >> inproc-$v.txt
  done
}
e2e() {
  order="up final"; [ $(($1%2)) = 0 ] && order="final up"
  for v in $order; do
    echo "$(date -u +%T) e2e round $1 $v $(cut -d' ' -f1-3 /proc/loadavg)" >> loads.txt
    /tmp/cb/e2e.sh /tmp/cb/goethe-$v /tmp/cb/final2/e2e/$v-$1 | sed "s/^/$v $1 /" >> e2e.txt
  done
}
uptime > uptime-start.txt
export -f inproc e2e
flock /work/bench.lock bash -c 'for r in 1 2 3; do inproc $r; done'
flock /work/bench.lock bash -c 'for r in 4 5 6; do inproc $r; done'
flock /work/bench.lock bash -c 'for r in 1 2 3 4 5 6 7 8; do e2e $r; done'
uptime > uptime-end.txt
echo done >> loads.txt
