//go:build !race

package race

// Enabled is true when the binary is built with the race detector.
const Enabled = false
