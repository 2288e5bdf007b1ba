#!/usr/bin/env bash
# Records the fan-out benchmarks before and after the wake-up in waves
# (commit 2107809, reverted by the next one) into results/bench/fanout/waves/.
#   results/bench/fanout/waves/run.sh [BEFORE_COMMIT] [COUNT] [BENCHTIME] [REGEXP] [AFTER_COMMIT] [OUT_DIR]
# Both sides are built from git (BEFORE_COMMIT, AFTER_COMMIT) with the current
# benchmark file; their test binaries run alternately, one run of each at
# a time, COUNT times, so that changes of the machine's load fall on both.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
before=${1:-f214579}
count=${2:-4}
benchtime=${3:-300x}
pattern=${4:-'Fanout(Append|Produce)/engine=leveldb/sync=true/size=100B/followers=(0|2000)$'}
after=${5:-2107809}
out=${6:-results/bench/fanout/waves}
mkdir -p "$out"
{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "after: $(git rev-parse --short "$after")"
  echo "before: $(git rev-parse --short "$before")"
  echo "command: results/bench/fanout/waves/run.sh $before $count $benchtime '$pattern' $after $out (test binaries of both sides, run alternately: -test.bench '$pattern' -test.benchtime $benchtime -test.count 1, $count times)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
  echo "memory: $(free -h | awk '/Mem:/ {print $2}')"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "go: $(go version)"
  go list -m google.golang.org/grpc github.com/syndtr/goleveldb | sed 's/^/module: /'
} | tee "$out/machine.txt"
tmp=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$tmp"' EXIT
for side in before after; do
  rev=$before
  [ "$side" = after ] && rev=$after
  mkdir -p "$tmp/$side"
  git archive "$rev" | tar -x -C "$tmp/$side"
  cp bench/fanout_bench_test.go "$tmp/$side/bench/"
  (cd "$tmp/$side" && go test -c -o "$tmp/$side.test" ./bench)
done
: >"$out/before.txt"
: >"$out/after.txt"
for i in $(seq "$count"); do
  for side in before after; do
    echo "# run $i, load average $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/$side.txt"
    (cd "$tmp" && "./$side.test" -test.run '^$' -test.bench "$pattern" -test.benchtime "$benchtime" \
      -test.count 1 -test.benchmem -test.timeout 60m) | tee -a "$out/$side.txt"
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
