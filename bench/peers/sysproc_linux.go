package peers

import "syscall"

// sysProcAttr makes the kernel kill a server if the process that started it
// dies, so that a crashed benchmark leaves nothing listening.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
