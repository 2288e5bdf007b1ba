# Goethe's build, test and benchmark entry points. Every target works on a
# fresh machine with Go 1.26; `make spec` also needs Debian's protobuf-compiler.

GO        ?= go
BENCH     ?= .
BENCHTIME ?= 1s
COUNT     ?= 1

.PHONY: all build cli test vet fuzz bench spec spec-check run clean results results-cluster results-fanout results-bench

all: build cli

build:
	$(GO) build -o bin/goethe ./cmd/goethe

cli:
	$(GO) build -o bin/goethectl ./cmd/goethectl

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: the files above need formatting"; exit 1; }
	$(GO) vet ./...

# The test command: vet, then every test with the race detector, against all
# three engines.
test: vet
	$(GO) test -race -count=1 -timeout 20m ./...

# Fuzzes every fuzz target for FUZZTIME each (go test runs their seed
# corpora in make test; CI runs this with FUZZTIME=10s). A failure leaves
# the input in the package's testdata/fuzz/ folder: commit it with the fix.
FUZZTIME ?= 1m
FUZZ_TARGETS = \
	./store:FuzzApply \
	./store:FuzzEventCodec \
	./store:FuzzLifecycleRecords \
	./store:FuzzReplicas \
	./client:FuzzDecodeConsumeResponse \
	./client:FuzzDecodeProduceStreamResponse \
	./client:FuzzEncodeProduce \
	./cmd/goethectl:FuzzParsePosition \
	./server:FuzzValidateProduce \
	./server:FuzzScanProduce \
	./cluster:FuzzEntry
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} in $${t%%:*} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

# The soak of bounded memory (e2e TestSoak): a real goethe with small budgets
# under every hostile client of issue 9 at once, RSS sampled, for SOAKTIME
# (make test runs it for 20s).
SOAKTIME ?= 10m
.PHONY: soak
soak:
	GOETHE_SOAK_TIME=$(SOAKTIME) $(GO) test -count=1 -run '^TestSoak$$' -timeout 0 -v ./e2e

# The linearizability check of a 3-node cluster under faults (cluster
# TestLinearizable, checked with porcupine) over a history recorded for
# LINTIME (make test records 2 s).
LINTIME ?= 1m
.PHONY: linearizability
linearizability:
	GOETHE_LINEARIZABILITY_TIME=$(LINTIME) $(GO) test -count=1 -run '^TestLinearizable$$' -timeout 0 -v ./cluster

# Benchmarks of every layer; narrow with BENCH=regexp, repeat with COUNT=n.
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -count $(COUNT) -timeout 120m ./bench/...

# The end-to-end comparison with NATS JetStream and Redis Streams (installs
# the peers, runs the matrix on loopback, renders results/e2e/summary.md and
# its SVG plots; about 15 minutes on 2 cores), then the retention benchmark
# (appends with retention trimming at the same time, against none) and the
# Raft log stores into results/bench/retention/ and results/bench/raftlog/.
results:
	bench/peers/results.sh results/e2e
	results/focus.sh retention BenchmarkRetention 5 3s
	results/focus.sh raftlog BenchmarkRaftLogStore 5 200x

# The cluster comparison alone (3-node Goethe against 3-node JetStream, 20
# leader kills each; `make results` runs it too), into results/e2e/cluster.
results-cluster:
	CLUSTER3=only bench/peers/results.sh results/e2e

# The fan-out comparison (issue 9): Produce p99 with 0 and 2,000 followers
# at the end of the topic, Goethe against JetStream and Redis Streams, 3
# interleaved rounds (about 25 minutes on 2 cores), into results/e2e/fanout
# (its raw.jsonl is replaced).
results-fanout:
	bench/peers/install.sh
	$(GO) build -o bench/peers/.work/bin/goethe ./cmd/goethe
	cd bench/peers && $(GO) build -o .work/bin/fanout ./cmd/fanout
	rm -f results/e2e/fanout/raw.jsonl
	cd bench/peers && .work/bin/fanout -out ../../results/e2e/fanout -root $(CURDIR) -max-time 36m

# Every benchmark in bench/ (raw engine, store, server), -count 5, with
# benchstat, into results/bench/.
results-bench:
	results/bench.sh 5

# Regenerates spec/goethe/v1/*.pb.go from the .proto (pinned plugins).
spec:
	./spec/gen.sh

# Fails when the committed code in spec/ is not what make spec generates
# (the protoc version line of the header is ignored: it names the
# machine's protoc, not a difference in the code).
spec-check: spec
	@git diff --exit-code -I '^//[[:space:]]+protoc[[:space:]]' -- spec/ || { echo "spec/: generated code is stale: run make spec and commit it"; exit 1; }

# Starts a server on the default engine (goleveldb) in ./goethe-data.
run:
	$(GO) run ./cmd/goethe

clean:
	rm -rf bin
