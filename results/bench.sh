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

results/machine.sh "go test -run '^\$' -bench '$pattern' -benchtime $benchtime -count $count ./bench" | tee "$out/machine.txt"

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
