#!/usr/bin/env bash
set -u
cd /tmp/cb/final
round=$1
order="up fork"; [ "${REV:-0}" = 1 ] && order="fork up"
for v in $order; do
  echo "$(date -u +%T) e2e round $round $v $(cut -d' ' -f1-3 /proc/loadavg)" >> loads.txt
  /tmp/cb/e2e.sh /tmp/cb/goethe-$v /tmp/cb/final/e2e/$v-$round | sed "s/^/$v $round /" >> e2e.txt
done
