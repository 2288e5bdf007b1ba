#!/usr/bin/env bash
# Records one benchmark of bench/ alone, with the machine it ran on and
# benchstat's summary, into results/bench/NAME/: what `make results` adds
# to the peer comparison (retention: appends with retention trimming at
# the same time, against none; raftlog: the Raft log stores).
#   results/focus.sh NAME REGEXP [COUNT] [BENCHTIME]
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1
pattern=$2
count=${3:-5}
benchtime=${4:-1s}
out=results/bench/$name
mkdir -p "$out"
GOBIN="$PWD/.work/bin" go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
benchstat="$PWD/.work/bin/benchstat"
cmd="go test -run '^\$' -bench '$pattern' -benchtime $benchtime -count $count ./bench"
results/machine.sh "$cmd" | tee "$out/machine.txt"
go test -run '^$' -bench "$pattern" -benchtime "$benchtime" -count "$count" -timeout 60m ./bench | tee "$out/bench.txt"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/machine.txt"
(cd "$out" && "$benchstat" -confidence 0.9 bench.txt >benchstat.txt)
echo "wrote $out/{machine.txt,bench.txt,benchstat.txt}"
