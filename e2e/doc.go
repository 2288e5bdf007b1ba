// Package e2e tests Goethe as people run it: the real goethe and goethectl
// binaries, built into a temporary folder, as subprocesses on loopback.
//
//   - TestCrashSafety kills the server with SIGKILL in the middle of a
//     concurrent load, on each engine, and checks after each restart that
//     every acknowledged event is there exactly once, in order, with its id
//     and seq, and that every unacknowledged batch is there wholly or not at
//     all.
//   - TestREADMEWalkthrough runs the shell commands of the README's CLI
//     walk-through and compares their output with the README's, so the
//     README cannot drift from the binaries.
//
// The binaries are built with the race detector when the tests are.
package e2e
