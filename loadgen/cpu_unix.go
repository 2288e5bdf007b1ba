//go:build unix

package loadgen

import (
	"syscall"
	"time"
)

// selfCPU returns the user and system CPU time this process has used so
// far, all threads (getrusage RUSAGE_SELF, microsecond resolution).
func selfCPU() (user, system time.Duration, ok bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0, false
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano()), true
}
