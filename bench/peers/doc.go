// Package peers runs Goethe's load generator (package loadgen) against NATS
// JetStream and Redis Streams as well as Goethe, so that the three compare
// under one harness, on one machine, in one run.
//
// # Basics
//
// NATS and Redis implement loadgen.PipelineTarget; NATSOpener and
// RedisOpener make the loadgen.Opener a run needs, and GoetheOpener
// Goethe's, in one of its client shapes (GoetheAsync, GoetheStream,
// GoetheUnary). StartNATS,
// StartRedis and StartGoethe start the servers as child processes on
// 127.0.0.1 with a fresh data folder, at one of two matched durability
// levels (ServerOptions.Fsync), and Server.Stop ends each by its PID.
// cmd/matrix runs every workload on every system and writes one JSON file
// per run, with the server's CPU per event (ProcCPU of its PID) beside
// loadgen's client CPU, and machine.json with the disk's appending-fsync
// rate (package fsyncrate) at its start and end; cmd/render turns a folder
// of them into SVG plots and summary.md (package report). results.sh does
// install, matrix and render in one go.
//
// # Caveats
//
// This is its own Go module, so that the peers' clients and the plotting
// library stay out of the server's dependencies; the main module's
// `go test ./...` does not run its tests. On Linux a server dies with the
// process that started it (Pdeathsig); elsewhere only Stop and results.sh's
// trap end them.
package peers
