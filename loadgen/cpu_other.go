//go:build !unix

package loadgen

import "time"

// selfCPU is not available without getrusage: Result.ClientCPU stays zero.
func selfCPU() (user, system time.Duration, ok bool) { return 0, 0, false }
