//go:build race

package e2e

// raceEnabled says that the tests, and so the binaries, are built with the
// race detector.
const raceEnabled = true
