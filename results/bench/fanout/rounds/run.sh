#!/usr/bin/env bash
# Records fan-out rounds (server/consume_rounds.go, the default) against
# each follower sending for itself through the gate (--fanout-solo, gate
# on), with the 2,000 followers in a niced child process
# (BenchmarkFanoutProduceChild), closed-loop (interval=0s) and paced (one
# Produce every 10 ms and every 40 ms), 300 Produces each, into this
# folder.
#   results/bench/fanout/rounds/run.sh ENGINE [COUNT]
# BENCH=FanoutProduceChildOneCPU runs that benchmark instead (the child
# bound to one CPU), into ENGINE-onecpu*.txt; BENCH=FanoutProduceWire the
# wire followers (bench/fanout_wire_test.go), into ENGINE-wire*.txt.
# GATES (default '(rounds|on)') picks the modes; PRODUCES (default 300)
# the Produces per run, paced runs of one per 40 ms a quarter of them.
# One test binary of the working tree; COUNT rounds (default 5), each
# round one run of every sub-benchmark, each run under the machine's
# shared lock (/work/bench.lock when it exists), with `uptime` beside it.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
eng=${1:?engine}
count=${2:-5}
out=results/bench/fanout/rounds
lock=()
[ -e /work/bench.lock ] && lock=(flock /work/bench.lock)
tmp=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/bench.test" ./bench
bench=${BENCH:-FanoutProduceChild}
suffix=""
[ "$bench" = FanoutProduceChildOneCPU ] && suffix=-onecpu
[ "$bench" = FanoutProduceWire ] && suffix=-wire
gates=${GATES:-(rounds|on)}
n=${PRODUCES:-300}
n40=$n
[ "$n" -gt 300 ] && n40=$((n / 4))
base="$bench/engine=$eng/sync=true/size=100B/followers=(0|2000)/gate=$gates"
raw="$out/$eng$suffix.txt"
{
  echo "# commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- server bench || echo ' + working tree')"
  echo "# command: BENCH=$bench GATES='$gates' PRODUCES=$n results/bench/fanout/rounds/run.sh $eng $count"
  echo "# each round, for interval in 0s 10ms 40ms: bench.test -test.run '^\$' -test.bench '$base/interval=\$interval\$' -test.benchtime ${n}x (40ms: ${n40}x) -test.benchmem -test.count 1"
} >"$raw"
for i in $(seq "$count"); do
  for run in "0s ${n}x" "10ms ${n}x" "40ms ${n40}x"; do
    set -- $run
    echo "# round $i, interval=$1, before: $(uptime)" >>"$raw"
    (cd "$tmp" && "${lock[@]}" ./bench.test -test.run '^$' -test.bench "$base/interval=$1\$" -test.benchtime "$2" \
      -test.benchmem -test.count 1 -test.timeout 30m) | grep '^Benchmark' | tee -a "$raw"
    echo "# round $i, interval=$1, after: $(uptime)" >>"$raw"
  done
done
units='.unit:(sec/op OR cpu-µs/event OR child-cpu-µs/event OR p50-µs OR p99-µs OR deliver-p50-µs OR deliver-p99-µs OR B/op OR allocs/op)'
# gate (each follower for itself, gate on; base) vs rounds, per followers and interval
if [[ "$gates" == *on* ]]; then
  benchstat -confidence 0.9 -col '/gate@(on rounds)' -row '/followers /interval' -filter "$units" "$raw" >"$out/$eng$suffix-rounds.benchstat.txt"
fi
# 0 followers (base) vs 2,000, per mode and interval
benchstat -confidence 0.9 -col /followers -row '/gate /interval' -filter "$units" "$raw" >"$out/$eng$suffix-followers.benchstat.txt"
echo "wrote $raw and its benchstat files in $out"
