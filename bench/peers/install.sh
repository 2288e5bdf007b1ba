#!/usr/bin/env bash
# Installs the peers the comparison runs against, idempotently:
#   - nats-server (NATS_VERSION, default v2.15.2) built with `go install`
#     into bench/peers/.work/bin;
#   - redis-server from Debian's packages (apt-get), if none is on PATH.
# Neither is started: cmd/matrix starts and stops its own servers on
# 127.0.0.1. (On a host with systemd, Debian's package also starts a
# redis-server service on port 6379; the comparison does not use or touch it.)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=$here/.work/bin
nats_version=${NATS_VERSION:-v2.15.2}
mkdir -p "$bin"

if "$bin/nats-server" --version 2>/dev/null | grep -qx "nats-server: $nats_version"; then
	echo "install: nats-server $nats_version already in $bin"
else
	echo "install: go install github.com/nats-io/nats-server/v2@$nats_version -> $bin"
	GOBIN=$bin go install "github.com/nats-io/nats-server/v2@$nats_version"
fi

if command -v redis-server >/dev/null 2>&1; then
	echo "install: $(redis-server --version | cut -d' ' -f1-3) already on PATH"
else
	sudo=""
	if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
	echo "install: apt-get install -y redis-server"
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q redis-server
fi
