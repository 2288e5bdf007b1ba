package peers

import (
	"fmt"
	"os"
	"time"
)

// ProcCPU returns the user and system CPU time process pid has used so
// far, summed over all its threads (/proc/<pid>/stat utime and stime, in
// 10 ms ticks).
func ProcCPU(pid int) (user, system time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("peers: cpu of process %d: %w", pid, err)
	}
	return parseProcStat(string(b))
}
