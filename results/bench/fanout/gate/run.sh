#!/usr/bin/env bash
# Records the fan-out gate (server/fanout_gate.go) on and off, with the
# followers in the benchmark's process (BenchmarkFanoutProduce) and in a
# niced child process (BenchmarkFanoutProduceChild), closed-loop
# (interval=0s, 300 Produces) and paced (interval=40ms, 150 Produces),
# into this folder.
#   results/bench/fanout/gate/run.sh ENGINE [COUNT]
# One test binary of the working tree (gate on and off are sub-benchmarks
# of it); COUNT rounds (default 5), each round one run of every
# sub-benchmark, each run under the machine's shared lock
# (/work/bench.lock when it exists), with `uptime` beside it.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
eng=${1:?engine}
count=${2:-5}
out=results/bench/fanout/gate
lock=()
[ -e /work/bench.lock ] && lock=(flock /work/bench.lock)
tmp=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/bench.test" ./bench
base="FanoutProduce(Child)?/engine=$eng/sync=true/size=100B/followers=(0|2000)/gate=(on|off)"
raw="$out/$eng.txt"
{
  echo "# commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- server bench || echo ' + working tree')"
  echo "# command: results/bench/fanout/gate/run.sh $eng $count"
  echo "# each round: bench.test -test.run '^\$' -test.bench '$base/interval=0s\$' -test.benchtime 300x -test.benchmem -test.count 1"
  echo "#        then bench.test -test.run '^\$' -test.bench '$base/interval=40ms\$' -test.benchtime 150x -test.benchmem -test.count 1"
} >"$raw"
for i in $(seq "$count"); do
  for run in "0s 300x" "40ms 150x"; do
    set -- $run
    echo "# round $i, interval=$1, before: $(uptime)" >>"$raw"
    (cd "$tmp" && "${lock[@]}" ./bench.test -test.run '^$' -test.bench "$base/interval=$1\$" -test.benchtime "$2" \
      -test.benchmem -test.count 1 -test.timeout 30m) | grep '^Benchmark' | tee -a "$raw"
    echo "# round $i, interval=$1, after: $(uptime)" >>"$raw"
  done
done
units='.unit:(sec/op OR cpu-µs/event OR p50-µs OR p99-µs OR deliver-p50-µs OR deliver-p99-µs)'
# gate off (base) vs on, per variant, followers and interval
benchstat -confidence 0.9 -col '/gate@(off on)' -row '.name /followers /interval' -filter "$units" "$raw" >"$out/$eng-gate.benchstat.txt"
# 0 followers (base) vs 2,000, per variant, gate and interval
benchstat -confidence 0.9 -col /followers -row '.name /gate /interval' -filter "$units" "$raw" >"$out/$eng-followers.benchstat.txt"
echo "wrote $raw, $out/$eng-gate.benchstat.txt, $out/$eng-followers.benchstat.txt"
