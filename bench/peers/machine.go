package peers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goethe-log/goethe/bench/peers/fsyncrate"
)

// Machine describes where and how a matrix ran, as written to
// machine.json beside the records.
type Machine struct {
	// Started and Finished bound the whole matrix, UTC.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Host facts.
	CPUs     int    `json:"cpus"`
	CPUModel string `json:"cpu_model,omitempty"`
	MemoryGB string `json:"memory_gb,omitempty"`
	Kernel   string `json:"kernel,omitempty"`
	OS       string `json:"os,omitempty"`
	// Filesystem of the servers' data folders.
	DataFS string `json:"data_fs,omitempty"`
	// FsyncPerSec is the disk's synchronous 4 KiB write rate under the
	// data folders: 2,000 writes with `dd oflag=dsync` divided by their
	// time. An fsync-per-ack system cannot acknowledge more serial writes
	// than this.
	FsyncPerSec float64 `json:"fsync_per_s"`
	// FsyncCommand is the dd command measured.
	FsyncCommand string `json:"fsync_command,omitempty"`
	// AppendFsync is the disk's appending-fsync rate under the data
	// folders, measured by package fsyncrate (records appended to a file,
	// fdatasync after each) at each size in AppendFsyncSizes, when the
	// matrix starts and when it ends: the physical limit of one writer that
	// syncs every record alone. AppendFsyncRate averages it.
	AppendFsync []AppendFsync `json:"append_fsync,omitempty"`
	// Versions of the toolchain, servers and client modules.
	Versions map[string]string `json:"versions"`
	// Commands are the exact command lines of the run.
	Commands []string `json:"commands"`
	// Notes are free text, such as quick mode.
	Notes []string `json:"notes,omitempty"`
}

// AppendFsync is one appending-fsync measurement of the data folders' disk.
type AppendFsync struct {
	// When is "start" or "end" of the matrix.
	When string `json:"when"`
	fsyncrate.Result
}

// AppendFsyncSizes are the record sizes MeasureAppendFsync measures: a
// small event's, and a page.
var AppendFsyncSizes = []int{100, 4096}

// MeasureAppendFsync measures the appending-fsync rate in dir at each of
// AppendFsyncSizes for d, labelling the results with when.
func MeasureAppendFsync(ctx context.Context, dir, when string, d time.Duration) ([]AppendFsync, error) {
	var out []AppendFsync
	for _, size := range AppendFsyncSizes {
		res, err := fsyncrate.Measure(ctx, fsyncrate.Options{Dir: dir, RecordBytes: size, Duration: d})
		if err != nil {
			return out, err
		}
		out = append(out, AppendFsync{When: when, Result: res})
	}
	return out, nil
}

// AppendFsyncRate returns the mean appending-fsync rate measured with
// records of size bytes, or 0 if none was.
func (m Machine) AppendFsyncRate(size int) float64 {
	var sum, n float64
	for _, a := range m.AppendFsync {
		if a.RecordBytes == size && a.PerSec > 0 {
			sum += a.PerSec
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / n
}

// CollectMachine gathers Machine facts; dataDir is where the servers store
// (the fsync rate is measured there). Facts it cannot find stay empty.
func CollectMachine(ctx context.Context, dataDir, natsBin, redisBin, goetheBin string) Machine {
	m := Machine{CPUs: runtime.NumCPU(), Versions: map[string]string{}}
	m.CPUModel = firstMatch("/proc/cpuinfo", `(?m)^model name\s*:\s*(.+)$`)
	if kb := firstMatch("/proc/meminfo", `(?m)^MemTotal:\s*(\d+) kB`); kb != "" {
		n, _ := strconv.ParseFloat(kb, 64)
		m.MemoryGB = fmt.Sprintf("%.1f", n/1024/1024)
	}
	m.Kernel = strings.TrimSpace(output(ctx, "uname", "-srm"))
	m.OS = firstMatch("/etc/os-release", `(?m)^PRETTY_NAME="?([^"\n]+)"?$`)
	if out := output(ctx, "df", "-T", dataDir); out != "" {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if f := strings.Fields(lines[len(lines)-1]); len(f) >= 2 {
			m.DataFS = f[0] + " (" + f[1] + ")"
		}
	}
	m.FsyncPerSec, m.FsyncCommand = FsyncRate(ctx, dataDir, 2000)

	m.Versions["go"] = runtime.Version()
	m.Versions["nats-server"] = strings.TrimSpace(output(ctx, natsBin, "--version"))
	m.Versions["redis-server"] = strings.TrimSpace(output(ctx, redisBin, "--version"))
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			switch d.Path {
			case "github.com/nats-io/nats.go", "github.com/redis/go-redis/v9", "google.golang.org/grpc",
				"github.com/syndtr/goleveldb", "github.com/cockroachdb/pebble/v2", "go.etcd.io/bbolt", "gonum.org/v1/plot":
				m.Versions[d.Path] = d.Version
			}
		}
	}
	if goetheBin != "" {
		if out := output(ctx, "go", "version", "-m", goetheBin); out != "" {
			if v := regexp.MustCompile(`(?m)^\s+build\s+vcs.revision=(\w+)`).FindStringSubmatch(out); v != nil {
				m.Versions["goethe"] = v[1]
			}
		}
	}
	if rev := strings.TrimSpace(output(ctx, "git", "-C", filepath.Dir(goetheBin), "rev-parse", "--short", "HEAD")); rev != "" {
		if _, ok := m.Versions["goethe"]; !ok {
			m.Versions["goethe"] = "commit " + rev
			if strings.TrimSpace(output(ctx, "git", "-C", filepath.Dir(goetheBin), "status", "--porcelain", "--untracked-files=no")) != "" {
				m.Versions["goethe"] += " (with local changes)"
			}
		}
	}
	return m
}

// FsyncRate measures synchronous 4 KiB writes per second in dir with
// `dd if=/dev/zero of=DIR/fsync-probe bs=4k count=N oflag=dsync`, and
// returns the rate and the command. It returns 0 if dd fails.
func FsyncRate(ctx context.Context, dir string, n int) (float64, string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, ""
	}
	file := filepath.Join(dir, "fsync-probe")
	defer os.Remove(file)
	args := []string{"if=/dev/zero", "of=" + file, "bs=4k", "count=" + strconv.Itoa(n), "oflag=dsync"}
	cmd := "dd " + strings.Join(args, " ")
	var stderr bytes.Buffer
	c := exec.CommandContext(ctx, "dd", args...)
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		return 0, cmd
	}
	// "8192000 bytes (8.2 MB, 7.8 MiB) copied, 2.34 s, 3.5 MB/s"
	v := regexp.MustCompile(`copied, ([0-9.,e+-]+) s`).FindStringSubmatch(stderr.String())
	if v == nil {
		return 0, cmd
	}
	secs, err := strconv.ParseFloat(strings.ReplaceAll(v[1], ",", "."), 64)
	if err != nil || secs <= 0 {
		return 0, cmd
	}
	return float64(n) / secs, cmd
}

// WriteMachine writes m as machine.json into dir.
func WriteMachine(dir string, m Machine) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "machine.json"), append(b, '\n'), 0o644)
}

// ReadMachine reads dir/machine.json.
func ReadMachine(dir string) (Machine, error) {
	var m Machine
	b, err := os.ReadFile(filepath.Join(dir, "machine.json"))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(b, &m)
}

func output(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return ""
	}
	return string(out)
}

func firstMatch(file, re string) string {
	f, err := os.Open(file)
	if err != nil {
		return ""
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(bufio.NewReader(f)); err != nil {
		return ""
	}
	if v := regexp.MustCompile(re).FindSubmatch(b.Bytes()); v != nil {
		return strings.TrimSpace(string(v[1]))
	}
	return ""
}

// AbsPaths makes each flag value that names a path with a separator in it
// absolute, so that it still names the same file once a process it is
// passed to runs in another folder. Bare names (found on $PATH) and empty
// values stay as they are.
func AbsPaths(paths ...*string) {
	for _, p := range paths {
		if *p != "" && strings.ContainsRune(*p, os.PathSeparator) {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
		}
	}
}

// StartMachine is CollectMachine for a command's run: started now, the dd
// command's data folder relative to root, and the command line (SelfCommand)
// recorded.
func StartMachine(ctx context.Context, dataDir, root, natsBin, redisBin, goetheBin, command string, args []string, drop ...string) Machine {
	m := CollectMachine(ctx, dataDir, natsBin, redisBin, goetheBin)
	m.Started = time.Now().UTC()
	if rel, err := filepath.Rel(root, dataDir); err == nil {
		m.FsyncCommand = strings.ReplaceAll(m.FsyncCommand, dataDir, rel)
	}
	m.Commands = append(m.Commands, SelfCommand(command, args, root, drop...))
	return m
}

// MeasureDisk measures the appending-fsync rate in dataDir (when names the
// moment: "start", "end"), records it in m and prints each result to out;
// the error, if any, is printed to errOut, prefixed with command, and
// returned (the run goes on without the figure).
func (m *Machine) MeasureDisk(ctx context.Context, dataDir, when string, d time.Duration, out, errOut io.Writer, command string) error {
	a, err := MeasureAppendFsync(ctx, dataDir, when, d)
	m.AppendFsync = append(m.AppendFsync, a...)
	for _, r := range a {
		fmt.Fprintf(out, "disk (%s): %s\n", when, r.Result)
	}
	if err != nil {
		fmt.Fprintf(errOut, "%s: appending-fsync rate: %v\n", command, err)
	}
	return err
}

// SelfCommand is a command line as recorded: command and args, with the
// paths under root made relative to it, and without the flags named in
// drop (with their values) nor -root and -pidfile, which say where this
// machine keeps things, not what was run.
func SelfCommand(command string, args []string, root string, drop ...string) string {
	out := []string{command}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimLeft(strings.SplitN(a, "=", 2)[0], "-")
		if name == "root" || name == "pidfile" || slices.Contains(drop, name) {
			if !strings.Contains(a, "=") {
				i++ // the flag's value
			}
			continue
		}
		out = append(out, strings.ReplaceAll(a, root+string(os.PathSeparator), ""))
	}
	return strings.Join(out, " ")
}
