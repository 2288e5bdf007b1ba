//go:build race

package cluster

// raceEnabled says that the tests are built with the race detector, whose
// instrumentation allocates.
const raceEnabled = true
