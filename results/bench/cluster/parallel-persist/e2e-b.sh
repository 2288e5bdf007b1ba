#!/usr/bin/env bash
# e2e.sh GOETHE_BIN OUTDIR: workload (b) only, single node and 3 nodes (pebble), no kills.
set -euo pipefail
bin=$1; out=$2
mkdir -p "$out"
echo "uptime: $(uptime)" >> "$out/uptime.txt"
cd /work/wt-clusterb/bench/peers
/tmp/cb/cluster3 -out "$out" -root /work/wt-clusterb -work /tmp/cb/e2ework -nats /nonexistent/nats-server \
  -goethe "$bin" -systems "${SYSTEMS:-^(goethe-pebble|cluster3-goethe-pebble)$}" -workloads '^b-100B$' -kills 0 -duration ${DUR:-4s}
echo "uptime end: $(uptime)" >> "$out/uptime.txt"
