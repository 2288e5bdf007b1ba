#!/usr/bin/env bash
# Records CPU profiles of the single-event produce workloads into
# results/profiles/: (a) 16 producers and (a') 1 producer of one 100 B event
# per call, fsync on, and (a) with fsync off (the CPU-per-event target).
# Each file holds the disk's appending-fsync rate measured just before, the
# command, the benchmark's line (events/s, cpu-us/event, appends/commit)
# and `pprof -top`, flat and cumulative. The benchmarks are bench/'s
# in-process ones: client and server in one process on loopback, so the
# profile holds both sides.
#
#   results/profiles.sh [BENCHTIME]              # the cases below, 5s each
#   results/profiles.sh 5s NAME=BENCHMARK ...    # other cases
#
# A case is a file name (without .txt) and the full name of one benchmark
# without its "Benchmark" prefix and -GOMAXPROCS suffix (each level is
# matched exactly); pass cases to profile other benchmarks (the async
# Producer's, say) under the same file names.
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${1:-5s}
shift || true
cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
	cases=(
		"a16-100B-leveldb-fsync=ProduceStream/engine=leveldb/sync=true/size=100B/batch=1/producers=16/streams=1"
		"a1-100B-leveldb-fsync=ProduceStream/engine=leveldb/sync=true/size=100B/batch=1/producers=1/streams=per-producer"
		"a16-100B-leveldb-nosync=ProduceStream/engine=leveldb/sync=false/size=100B/batch=1/producers=16/streams=1"
	)
fi
out=results/profiles
mkdir -p "$out"
tmp=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$tmp"' EXIT

go test -c -o "$tmp/bench.test" ./bench
(cd bench/peers && go build -o "$tmp/fsyncrate" ./cmd/fsyncrate)
for c in "${cases[@]}"; do
	name=${c%%=*}
	bench=${c#*=}
	# go test matches -bench level by level, split at '/': anchor each.
	re=$(printf 'Benchmark%s' "$bench" | sed -E 's#[^/]+#^&$#g')
	file=$out/$name.txt
	echo "profile: $name ($bench)"
	{
		echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with local changes)'), $(nproc) CPUs"
		echo "# the disk's appending-fsync rate, just before: bench/peers/cmd/fsyncrate -sizes 100 -duration 2s"
		"$tmp/fsyncrate" -dir "$tmp" -sizes 100 -duration 2s
		echo
		echo "# go test -run '^\$' -bench '$re' -benchtime $benchtime -cpuprofile cpu.prof ./bench"
	} >"$file"
	# go test runs the test binary in the package's folder: so does this.
	(cd bench && "$tmp/bench.test" -test.run '^$' -test.bench "$re" -test.benchtime "$benchtime" \
		-test.benchmem -test.cpuprofile "$tmp/cpu.prof") >"$tmp/bench.out"
	lines=$(grep -c '^Benchmark' "$tmp/bench.out" || true)
	if [ "$lines" != 1 ]; then
		echo "profiles: $name: -bench '$re' ran $lines benchmarks, want 1 ($bench):" >&2
		cat "$tmp/bench.out" >&2
		rm -f "$file"
		exit 1
	fi
	{
		grep '^Benchmark' "$tmp/bench.out"
		echo
		echo "# go tool pprof -top -nodecount=30 bench.test cpu.prof"
		go tool pprof -top -nodecount=30 "$tmp/bench.test" "$tmp/cpu.prof" 2>/dev/null
		echo
		echo "# go tool pprof -top -cum -nodecount=40 bench.test cpu.prof"
		go tool pprof -top -cum -nodecount=40 "$tmp/bench.test" "$tmp/cpu.prof" 2>/dev/null
		echo
		echo "# the server's share (its goroutines carry the pprof label goethe=server; see internal/testutil):"
		echo "# go tool pprof -top -cum -nodecount=40 -tagfocus goethe=server bench.test cpu.prof"
		go tool pprof -top -cum -nodecount=40 -tagfocus goethe=server "$tmp/bench.test" "$tmp/cpu.prof" 2>/dev/null
	} >>"$file"
	echo "profile: wrote $file"
done
