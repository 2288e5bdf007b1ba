#!/usr/bin/env bash
# Records BenchmarkFanoutProduce (leveldb, 0/1,000/2,000 followers) before
# and after the shared page encodings (commit 8f5c5ef), into this folder.
#   results/bench/fanout/encode-once/run.sh [COUNT] [ENV...]
# The "before" side is commit 8883f5e with the current benchmark file
# copied in (so both report heap-B/follower); the two test binaries run
# alternately, one run of each at a time, COUNT times (default 12).
# ENV (e.g. GOGC=off GOMEMLIMIT=2GiB) is set for both binaries; with ENV
# set, results go to *-gcoff.txt.
set -euo pipefail
cd "$(dirname "$0")/../../../.."
count=${1:-12}; shift || true
suffix=""; [ $# -gt 0 ] && suffix="-gcoff"
out=results/bench/fanout/encode-once
pattern='BenchmarkFanoutProduce/engine=leveldb/sync=true/size=100B/followers=(0|1000|2000)$'
tmp=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src"
git archive 8883f5e | tar -x -C "$tmp/src"
cp bench/fanout_bench_test.go "$tmp/src/bench/"
(cd "$tmp/src" && go test -c -o "$tmp/before.test" ./bench)
go test -c -o "$tmp/after.test" ./bench
: >"$out/before$suffix.txt"
: >"$out/after$suffix.txt"
cd bench
for _ in $(seq "$count"); do
  for side in before after; do
    env "$@" "$tmp/$side.test" -test.run '^$' -test.bench "$pattern" -test.benchtime 300x \
      -test.benchmem -test.count 1 >>"../$out/$side$suffix.txt"
  done
done
cd ..
go run golang.org/x/perf/cmd/benchstat@latest "$out/before$suffix.txt" "$out/after$suffix.txt" | tee "$out/benchstat$suffix.txt"
