#!/usr/bin/env bash
# Regenerates the Go code of spec/goethe/v1/*.proto. The generated files are
# committed; run this after editing a .proto (make spec calls it).
#
# protoc comes from Debian's protobuf-compiler package (apt-get install
# protobuf-compiler), which also ships the well-known types
# (google/protobuf/timestamp.proto); google/rpc/status.proto, which it does
# not ship, is kept in spec/google/rpc/ for the import only (its Go code is
# google.golang.org/genproto/googleapis/rpc/status). The two Go plugins are installed at
# pinned versions into a private folder, so the output does not depend on
# whatever else is on PATH.
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12      # google.golang.org/protobuf, as in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.5.1   # google.golang.org/grpc/cmd/protoc-gen-go-grpc

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v protoc >/dev/null 2>&1; then
	echo "spec/gen.sh: protoc not found; install Debian's protobuf-compiler (apt-get install protobuf-compiler)" >&2
	exit 1
fi

tools="$(go env GOPATH)/goethe-tools/protoc-gen-go-${PROTOC_GEN_GO_VERSION}_grpc-${PROTOC_GEN_GO_GRPC_VERSION}"
if [[ ! -x "$tools/protoc-gen-go" || ! -x "$tools/protoc-gen-go-grpc" ]]; then
	mkdir -p "$tools"
	GOBIN="$tools" go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
	GOBIN="$tools" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"
fi

protos=(spec/goethe/v1/*.proto)
PATH="$tools:$PATH" protoc \
	--proto_path=spec \
	--go_out=spec --go_opt=paths=source_relative \
	--go-grpc_out=spec --go-grpc_opt=paths=source_relative \
	"${protos[@]}"
echo "spec/gen.sh: generated Go code for ${protos[*]} (protoc $(protoc --version | cut -d' ' -f2), protoc-gen-go $PROTOC_GEN_GO_VERSION, protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC_VERSION)"
