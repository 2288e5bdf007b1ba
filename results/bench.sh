#!/usr/bin/env bash
# Records a run of the benchmarks in bench/ (every layer: raw engine, store,
# gRPC server; every engine) into results/bench/: the raw output, benchstat's
# summary and the machine it ran on. BenchmarkRetention (appends with
# retention trimming at the same time, against none; its disk-MiB and
# retained-MiB say what the data folder and the topic hold at the end) is
# also summarised alone in results/bench/retention.txt.
#   results/bench.sh [COUNT] [BENCHTIME] [REGEXP]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-5}
benchtime=${2:-1s}
pattern=${3:-.}
out=results/bench
mkdir -p "$out"

GOBIN="$PWD/.work/bin" go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
benchstat="$PWD/.work/bin/benchstat"

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "command: go test -run '^\$' -bench '$pattern' -benchtime $benchtime -count $count ./bench"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
  echo "memory: $(free -h | awk '/Mem:/ {print $2}')"
  tmp=$(mktemp -d -p "${TMPDIR:-/tmp}")
  # The disk's fsync'd 4 KiB writes per second, as dd measures them, three times.
  for i in 1 2 3; do
    line=$(dd if=/dev/zero of="$tmp/dd" bs=4k count=2000 oflag=dsync 2>&1 | tail -1)
    secs=$(echo "$line" | sed -E 's/.* copied, ([0-9.]+) s.*/\1/')
    echo "fsync'd 4 KiB writes/s (dd oflag=dsync, 2000 writes): $(awk -v s="$secs" 'BEGIN {printf "%.0f", 2000/s}')"
  done
  # The disk's appending-fsync rate (records appended to a file, fdatasync
  # after each), the limit of one writer that syncs every event alone:
  # bench/peers/cmd/fsyncrate, the tool the peer comparison records too.
  (cd bench/peers && go run ./cmd/fsyncrate -dir "$tmp" -sizes 100,4096 -duration 2s) | sed 's/^/appending fsync: /'
  rm -rf "$tmp"
  echo "go: $(go version)"
  go list -m github.com/syndtr/goleveldb github.com/cockroachdb/pebble/v2 go.etcd.io/bbolt | sed 's/^/module: /'
} | tee "$out/machine.txt"

go test -run '^$' -bench "$pattern" -benchtime "$benchtime" -count "$count" -timeout 180m ./bench | tee "$out/bench.txt"
# The disk's rate again after the benchmarks, so that drift shows.
tmp=$(mktemp -d -p "${TMPDIR:-/tmp}")
(cd bench/peers && go run ./cmd/fsyncrate -dir "$tmp" -sizes 100,4096 -duration 2s) | sed 's/^/appending fsync (after the benchmarks): /' | tee -a "$out/machine.txt"
rm -rf "$tmp"
# With -count 5, benchstat gives an interval only at 90% confidence.
(cd "$out" && "$benchstat" -confidence 0.9 bench.txt >benchstat.txt)
if grep -q '^BenchmarkRetention' "$out/bench.txt"; then
  (cd "$out" && grep -E '^(goos|goarch|pkg|cpu|BenchmarkRetention)' bench.txt >retention.raw.txt &&
    "$benchstat" -confidence 0.9 retention.raw.txt >retention.txt && rm retention.raw.txt)
fi
echo "wrote $out/{machine.txt,bench.txt,benchstat.txt,retention.txt}"
