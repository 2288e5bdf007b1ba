#!/usr/bin/env bash
# Runs the end-to-end comparison of Goethe with NATS JetStream and Redis
# Streams and renders it:
#
#   bench/peers/results.sh OUTDIR [matrix flags...]
#
# install.sh (peers), build (goethe server, matrix, render), the matrix
# (one JSON record per run, and machine.json, into OUTDIR), then render
# (OUTDIR/summary.md, throughput.svg, latency.svg). Defaults: 2 runs of
# each workload, 6 s per timed run, Goethe through its async client with
# the stream-per-producer shape beside it on the single-event workloads
# (about 15 minutes on 2 cores); pass
# -quick for a smoke run of about 3 minutes, or any other matrix flag
# (later flags win). Then the cluster comparison (issue 8, cmd/cluster3:
# 3-node Goethe against 3-node JetStream, and 20 leader kills each) into
# OUTDIR/cluster, about 5 minutes more; CLUSTER3=0 skips it, CLUSTER3=only
# runs it alone (no matrix), and
# CLUSTER3_FLAGS adds cluster3 flags (e.g. "-kills 5 -duration 2s").
# Every server listens on 127.0.0.1 only and is stopped by its PID, also
# when this script fails or is interrupted.
set -euo pipefail

if [ $# -lt 1 ]; then
	echo "usage: $0 OUTDIR [matrix flags...]" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$1
shift
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$here/.work
pidfile=$work/servers.pid
mkdir -p "$work/bin"
rm -rf "$work/data" # data folders a killed run may have left
: >"$pidfile"

# Ends any server matrix started and left running (matrix stops each after
# its run, and the kernel kills them if matrix dies; this is the last line).
# Only PIDs from our pid file whose command line names our work folder.
cleanup() {
	local pid cmdline
	if [ -f "$pidfile" ]; then
		while read -r pid; do
			cmdline=$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null || true)
			if [ -n "$pid" ] && [[ "$cmdline" == *"$work/"* ]]; then
				echo "results: stopping server $pid left running" >&2
				kill "$pid" 2>/dev/null || true
			fi
		done <"$pidfile"
		rm -f "$pidfile"
	fi
}
# On SIGINT or SIGTERM, matrix (run in the background so that the signal is
# handled at once) is told to stop too; it stops its current server.
matrix_pid=""
on_signal() {
	if [ -n "$matrix_pid" ]; then
		kill -TERM "$matrix_pid" 2>/dev/null || true
		wait "$matrix_pid" 2>/dev/null || true
	fi
	exit 130
}
trap cleanup EXIT
trap on_signal INT TERM

rel_out=${out#"$root"/}
"$here/install.sh"
echo "build: goethe, matrix, render"
(cd "$root" && go build -o "$work/bin/goethe" ./cmd/goethe)
(cd "$here" && go build -o "$work/bin/matrix" ./cmd/matrix && go build -o "$work/bin/render" ./cmd/render &&
	go build -o "$work/bin/cluster3" ./cmd/cluster3)

status=0
if [ "${CLUSTER3:-1}" != only ]; then
	(cd "$here" && exec "$work/bin/matrix" -out "$out" -root "$root" -work "$work/data" \
		-nats "$work/bin/nats-server" -goethe "$work/bin/goethe" -pidfile "$pidfile" \
		-command "bench/peers/results.sh $rel_out${*:+ $*}" \
		-command "bench/peers/install.sh  # nats-server ${NATS_VERSION:-v2.15.2} via go install, redis-server via apt-get" \
		-command "go build -o bench/peers/.work/bin/goethe ./cmd/goethe" \
		-runs 2 -duration 6s -goethe-client async -goethe-extra-client stream "$@") &
	matrix_pid=$!
	wait "$matrix_pid" || status=$?
	matrix_pid=""
	"$work/bin/render" -in "$out"
fi

if [ "${CLUSTER3:-1}" != 0 ]; then
	echo "cluster: 3-node Goethe against 3-node JetStream -> $rel_out/cluster"
	# shellcheck disable=SC2086 # CLUSTER3_FLAGS is a list of flags
	(cd "$here" && exec "$work/bin/cluster3" -out "$out/cluster" -root "$root" -work "$work/data" \
		-nats "$work/bin/nats-server" -goethe "$work/bin/goethe" -pidfile "$pidfile" \
		-command "CLUSTER3=${CLUSTER3:-1} CLUSTER3_FLAGS='${CLUSTER3_FLAGS:-}' bench/peers/results.sh $rel_out${*:+ $*}" \
		${CLUSTER3_FLAGS:-}) &
	matrix_pid=$!
	wait "$matrix_pid" || status=$?
	matrix_pid=""
fi
exit $status
