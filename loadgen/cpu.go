package loadgen

import "time"

// CPU is the CPU time a process used during a run's measured phase: user
// plus system time of all its threads, as getrusage or /proc report it.
// Zero when it could not be measured (a platform without getrusage).
type CPU struct {
	// UserSeconds and SystemSeconds are the process's CPU time in the
	// window, in user space and in the kernel (system calls such as
	// writes, fsyncs and socket I/O).
	UserSeconds   float64 `json:"user_s"`
	SystemSeconds float64 `json:"system_s"`
	// Cores is (UserSeconds + SystemSeconds) over the window's wall-clock
	// seconds: how many cores the process kept busy on average.
	Cores float64 `json:"cores"`
	// MicrosPerEvent is (UserSeconds + SystemSeconds) in microseconds per
	// event: per acknowledged event in a produce run, per event read in
	// read-back. 0 when there were no events.
	MicrosPerEvent float64 `json:"us_per_event"`
}

// NewCPU returns the CPU figures of user and system time spent over wall
// time on events events.
func NewCPU(user, system, wall time.Duration, events int64) CPU {
	c := CPU{UserSeconds: user.Seconds(), SystemSeconds: system.Seconds()}
	total := c.UserSeconds + c.SystemSeconds
	if wall > 0 {
		c.Cores = total / wall.Seconds()
	}
	if events > 0 {
		c.MicrosPerEvent = total * 1e6 / float64(events)
	}
	return c
}

// Measured reports whether c holds a measurement.
func (c CPU) Measured() bool { return c.UserSeconds > 0 || c.SystemSeconds > 0 }

// cpuMark is a reading of this process's CPU time and the wall clock.
type cpuMark struct {
	user, system time.Duration
	wall         time.Time
	ok           bool
}

func markCPU() cpuMark {
	u, s, ok := selfCPU()
	return cpuMark{user: u, system: s, wall: time.Now(), ok: ok}
}

// cpuBetween returns the CPU used from mark a to mark b over events
// events, or zero if either reading failed.
func cpuBetween(a, b cpuMark, events int64) CPU {
	if !a.ok || !b.ok {
		return CPU{}
	}
	return NewCPU(b.user-a.user, b.system-a.system, b.wall.Sub(a.wall), events)
}
