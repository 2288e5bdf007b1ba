#!/usr/bin/env bash
# Prints the facts of the machine a benchmark ran on: date, commit, CPU,
# memory, the disk's fsync rates (dd's fsync'd 4 KiB writes, and the
# appending-fsync rate bench/peers/cmd/fsyncrate measures: the limit of one
# writer that syncs each record alone), Go and the engines' versions.
#   results/machine.sh "COMMAND THAT WAS RUN"
set -euo pipefail
cd "$(dirname "$0")/.."
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "command: $1"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
echo "memory: $(free -h | awk '/Mem:/ {print $2}')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
tmp=$(mktemp -d -p "${TMPDIR:-/tmp}")
trap 'rm -rf "$tmp"' EXIT
for i in 1 2 3; do
  line=$(dd if=/dev/zero of="$tmp/dd" bs=4k count=2000 oflag=dsync 2>&1 | tail -1)
  secs=$(echo "$line" | sed -E 's/.* copied, ([0-9.]+) s.*/\1/')
  echo "fsync'd 4 KiB writes/s (dd oflag=dsync, 2000 writes): $(awk -v s="$secs" 'BEGIN {printf "%.0f", 2000/s}')"
done
(cd bench/peers && go run ./cmd/fsyncrate -dir "$tmp" -sizes 100,4096 -duration 2s) | sed 's/^/appending fsync: /'
echo "go: $(go version)"
go list -m github.com/syndtr/goleveldb github.com/cockroachdb/pebble/v2 go.etcd.io/bbolt \
  github.com/hashicorp/raft github.com/hashicorp/raft-wal github.com/hashicorp/raft-boltdb/v2 | sed 's/^/module: /'
