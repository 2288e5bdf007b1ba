package peers

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrNoProcCPU is the error of ProcCPU where /proc/<pid>/stat is not
// available (not Linux).
var ErrNoProcCPU = errors.New("peers: no /proc/<pid>/stat to read a process's CPU time from")

// clockTicks is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// 100 on every Linux architecture Go supports (the kernel converts its own
// tick rate to it for this interface).
const clockTicks = 100

// parseProcStat returns the user and system CPU time in the contents of a
// /proc/<pid>/stat file: fields 14 (utime) and 15 (stime), in clock ticks,
// of all the process's threads, live and ended. The second field, the
// command name in parentheses, may hold spaces and parentheses itself, so
// fields are counted from the last ')'.
func parseProcStat(stat string) (user, system time.Duration, err error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("peers: /proc stat without a command name: %.60q", stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("peers: /proc stat with %d fields after the command name: %.60q", len(f), stat)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("peers: /proc stat utime or stime: %w", err)
	}
	tick := time.Second / clockTicks
	return time.Duration(ut) * tick, time.Duration(st) * tick, nil
}

// CPU returns the user and system CPU time the server process has used
// since it started, all threads (ProcCPU of its PID).
func (s *Server) CPU() (user, system time.Duration, err error) { return ProcCPU(s.PID()) }
