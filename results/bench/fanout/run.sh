#!/usr/bin/env bash
# Records the fan-out benchmarks (bench/fanout_bench_test.go: Append and
# Produce latency with 0 to 2,000 followers at the end of the topic) before
# and after the store's tail ring, into results/bench/fanout/.
#   results/bench/fanout/run.sh [BEFORE_COMMIT] [COUNT] [BENCHTIME] [REGEXP]
# BEFORE_COMMIT (default 4704408, the last commit without the ring) is
# exported with git archive into a temporary folder, with the current
# benchmark file copied in, so both sides run the same benchmark code; the
# two test binaries then run alternately, COUNT times each.
set -euo pipefail
cd "$(dirname "$0")/../../.."
before=${1:-4704408}
count=${2:-5}
benchtime=${3:-500x}
pattern=${4:-Fanout}
out=results/bench/fanout
mkdir -p "$out"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "after: $(git rev-parse --short HEAD) (+ working tree)"
  echo "before: $before"
  echo "command: results/bench/fanout/run.sh $before $count $benchtime '$pattern' (test binaries of both sides, run alternately: -test.bench '$pattern' -test.benchtime $benchtime -test.count 1, $count times)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
  echo "memory: $(free -h | awk '/Mem:/ {print $2}')"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "go: $(go version)"
  go list -m google.golang.org/grpc github.com/syndtr/goleveldb github.com/cockroachdb/pebble/v2 go.etcd.io/bbolt | sed 's/^/module: /'
} | tee "$out/machine.txt"

tmp=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src"
git archive "$before" | tar -x -C "$tmp/src"
cp bench/fanout_bench_test.go "$tmp/src/bench/"
(cd "$tmp/src" && go test -c -o "$tmp/before.test" ./bench)
go test -c -o "$tmp/after.test" ./bench
# Before and after alternate, one run of each at a time, so that a change
# in the machine's load (it may be shared) falls on both alike.
: >"$out/before.txt"
: >"$out/after.txt"
for i in $(seq "$count"); do
  for side in before after; do
    (cd "$tmp" && "./$side.test" -test.run '^$' -test.bench "$pattern" -test.benchtime "$benchtime" \
      -test.count 1 -test.benchmem -test.timeout 120m) | tee -a "$out/$side.txt"
  done
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"
benchstat=$(command -v benchstat || true)
if [ -z "$benchstat" ]; then
  GOBIN="$PWD/.work/bin" go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
  benchstat="$PWD/.work/bin/benchstat"
fi
(cd "$out" && "$benchstat" -confidence 0.9 before.txt after.txt >benchstat.txt)
echo "wrote $out/{machine.txt,before.txt,after.txt,benchstat.txt}"
