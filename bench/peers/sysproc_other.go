//go:build !linux

package peers

import "syscall"

// sysProcAttr is empty where the kernel cannot tie a child's life to its
// parent's; results.sh's trap ends the servers instead.
func sysProcAttr() *syscall.SysProcAttr { return nil }
