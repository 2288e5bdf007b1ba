//go:build !linux

package peers

import "time"

// ProcCPU is only implemented on Linux: elsewhere the matrix records no
// server CPU.
func ProcCPU(pid int) (user, system time.Duration, err error) { return 0, 0, ErrNoProcCPU }
