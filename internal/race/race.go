//go:build race

// Package race tells whether the binary is built with the race detector,
// for tests that count allocations: its instrumentation allocates.
package race

// Enabled is true when the binary is built with the race detector.
const Enabled = true
