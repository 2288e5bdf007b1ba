package peers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/goethe-log/goethe/loadgen"
)

// Durability levels of a System, as recorded in a Record.
const (
	// DurabilityFsync: every acknowledged event was fsync'd first.
	DurabilityFsync = "fsync"
	// DurabilityDefault: the system's out-of-the-box setting.
	DurabilityDefault = "default"
	// DurabilityNoSync: Goethe with --sync=false, shown for information;
	// no peer runs at it.
	DurabilityNoSync = "nosync"
)

// System is one system under test at one durability setting.
type System struct {
	// Name is the system's short name: nats, redis, goethe-leveldb, …
	Name string `json:"name"`
	// Title is its human name, with the setting: "NATS JetStream (sync_interval always)".
	Title string `json:"title"`
	// Durability is DurabilityFsync, DurabilityDefault or DurabilityNoSync.
	// Goethe's default is --sync=true, so its fsync runs stand in both
	// columns; Also lists the extra level a run counts for.
	Durability string `json:"durability"`
	// Also is a second durability level the system's runs count for
	// ("default" for Goethe --sync=true), or "".
	Also string `json:"also,omitempty"`
	// Peer is true for NATS and Redis, false for Goethe.
	Peer bool `json:"peer"`
	// Engine is Goethe's engine, "" for a peer.
	Engine string `json:"engine,omitempty"`
	// Fsync is ServerOptions.Fsync.
	Fsync bool `json:"fsync"`
	// Client is how the load generator reaches Goethe (GoetheAsync,
	// GoetheStream, GoetheUnary); "" for a peer. Records written before
	// the field existed used GoetheStream.
	Client string `json:"client,omitempty"`
	// Connections is how many client connections Goethe's producers
	// share with GoetheAsync (0 means 1); each has its own otherwise.
	Connections int `json:"connections,omitempty"`
	// Extra marks a Goethe system run with a second client shape beside
	// the main one, for comparing shapes: shown in the tables, left out of
	// the headline and the targets.
	Extra bool `json:"extra,omitempty"`
}

// Key names a system and its durability in file names and plots.
func (s System) Key() string { return s.Name + "." + s.Durability }

// Systems returns the systems the matrix measures, peers first: JetStream
// and Redis at both durability levels, Goethe on every engine in engines
// with --sync=true (its default, and fsync before ack), and Goethe with
// --sync=false on the engines in nosync, for information. Every Goethe
// system uses the client shape client (GoetheAsync, GoetheStream or
// GoetheUnary).
func Systems(engines, nosync []string, client string) []System {
	s := []System{
		{Name: "nats", Title: "NATS JetStream (default sync)", Durability: DurabilityDefault, Peer: true},
		{Name: "nats", Title: "NATS JetStream (sync_interval always)", Durability: DurabilityFsync, Peer: true, Fsync: true},
		{Name: "redis", Title: "Redis Streams (appendfsync everysec)", Durability: DurabilityDefault, Peer: true},
		{Name: "redis", Title: "Redis Streams (appendfsync always)", Durability: DurabilityFsync, Peer: true, Fsync: true},
	}
	for _, e := range engines {
		s = append(s, System{Name: "goethe-" + e, Title: "Goethe " + e + " (--sync=true, " + client + " client)",
			Durability: DurabilityFsync, Also: DurabilityDefault, Engine: e, Fsync: true, Client: client})
	}
	for _, e := range nosync {
		s = append(s, System{Name: "goethe-" + e, Title: "Goethe " + e + " (--sync=false, " + client + " client)",
			Durability: DurabilityNoSync, Engine: e, Client: client})
	}
	return s
}

// ExtraClient returns Goethe system s (as Systems made it) with client
// shape client instead, marked Extra and named apart ("goethe-leveldb-stream"),
// so that its records sit beside the main shape's.
func ExtraClient(s System, client string) System {
	s.Name += "-" + client
	s.Title = strings.Replace(s.Title, s.Client+" client", client+" client", 1)
	s.Client, s.Extra, s.Connections = client, true, 0
	return s
}

// RunsOn reports whether the matrix runs workload w on system s: a
// read-back once per system, at its default durability (Goethe:
// --sync=true); an Extra client shape only on the workloads of single
// events, one per call, where the shapes differ most.
func RunsOn(w Workload, s System) bool {
	switch {
	case w.ReadBack():
		return !s.Extra && (s.Durability == DurabilityDefault || s.Also == DurabilityDefault)
	case s.Extra:
		return w.Config.Batch == 1 && !w.Config.Pipelined
	}
	return true
}

// Workload is one of the workloads (a) to (e).
type Workload struct {
	// ID is short and sortable: a16-100B, b-100B, c-1KiB, …
	ID string `json:"id"`
	// Title says what it does.
	Title string `json:"title"`
	// Metric is the figure the workload is judged by: "events/s" (produce
	// or read-back events per second), "MB/s", or "latency" (end-to-end
	// percentiles).
	Metric string `json:"metric"`
	// Config is the run's loadgen configuration (the read-back's, for a
	// read-back workload).
	Config loadgen.Config `json:"config"`
	// Preload, for a read-back workload, is the produce run that writes
	// the events first.
	Preload *loadgen.Config `json:"preload,omitempty"`
}

// ReadBack reports whether w reads back preloaded events. Read-back does
// not depend on the write durability, so it runs once per system, at its
// default (peers) or --sync=true (Goethe).
func (w Workload) ReadBack() bool { return w.Preload != nil }

// Workloads returns the matrix's workloads. Timed runs last d, the latency
// run at most 5 s (a system that cannot keep up with its offered rate
// still has to send every event due in that time, which takes longer); a
// read-back reads readBack events (1,000,000 in the full matrix).
func Workloads(d time.Duration, readBack int64) []Workload {
	timed := func(producers, batch, size int) loadgen.Config {
		c := loadgen.DefaultConfig()
		c.Producers, c.Batch, c.Size = producers, batch, size
		c.Events, c.Duration = 0, d
		c.MaxErrors = 100
		return c
	}
	readback := func(id, title string, size int) Workload {
		pre := loadgen.DefaultConfig()
		pre.Producers, pre.Batch, pre.Size, pre.Events = 4, 1000, size, readBack
		pre.TopicPrefix = "rb"
		rb := loadgen.DefaultConfig()
		rb.ReadBack, rb.Consumers, rb.Events, rb.Size = true, 1, readBack, size
		rb.Producers, rb.Batch = 0, 0
		rb.TopicPrefix = "rb"
		metric := "events/s"
		if size >= 1024 {
			metric = "MB/s"
		}
		return Workload{ID: id, Title: title, Metric: metric, Config: rb, Preload: &pre}
	}
	pipelined := func(c loadgen.Config) loadgen.Config {
		c.Pipelined = true
		return c
	}
	e := timed(16, 1, 100)
	e.Rate, e.Consumers, e.Duration = 20_000, 1, min(d, 5*time.Second)
	return []Workload{
		{ID: "a16-100B", Title: "(a) 16 producers, 1 × 100 B event per call, wait for each ack", Metric: "events/s", Config: timed(16, 1, 100)},
		{ID: "a1-100B", Title: "(a) 1 producer, 1 × 100 B event per call, wait for each ack", Metric: "events/s", Config: timed(1, 1, 100)},
		{ID: "b-100B", Title: "(b) 1 producer, 100 B events batched/pipelined 1,000 per call", Metric: "events/s", Config: timed(1, 1000, 100)},
		{ID: "p-100B", Title: "(b') 1 producer, 1,000 single 100 B events in flight per call (pipelined), wait for every ack",
			Metric: "events/s", Config: pipelined(timed(1, 1000, 100))},
		readback("c-100B", fmt.Sprintf("(c) read back %s events of 100 B from the start", count(readBack)), 100),
		readback("c-1KiB", fmt.Sprintf("(c) read back %s events of 1 KiB from the start", count(readBack)), 1024),
		{ID: "d16-1KiB", Title: "(d) 16 producers, 1 × 1 KiB event per call, wait for each ack", Metric: "events/s", Config: timed(16, 1, 1024)},
		{ID: "d1-1KiB", Title: "(d) 1 producer, 1 KiB events batched/pipelined 1,000 per call", Metric: "MB/s", Config: timed(1, 1000, 1024)},
		{ID: "e-100B", Title: "(e) end-to-end latency, 16 producers offering 20,000 events/s of 100 B, 1 following consumer", Metric: "latency", Config: e},
	}
}

func count(n int64) string {
	if n%1_000_000 == 0 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	if n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// Record is one run of one workload on one system, as written to
// <workload>.<system>.<durability>.r<run>.json.
type Record struct {
	Workload Workload `json:"workload"`
	System   System   `json:"system"`
	// Run counts from 1.
	Run int `json:"run"`
	// Server is the server's command line.
	Server []string `json:"server"`
	// Preload is the produce run of a read-back workload.
	Preload *loadgen.Result `json:"preload,omitempty"`
	// Result is what the run measured; Result.ClientCPU is the load
	// generator's CPU (the matrix process's, from getrusage).
	Result loadgen.Result `json:"result"`
	// ServerCPU is the server process's CPU time (/proc/<pid>/stat, all
	// threads) from just before the workload's loadgen.Run to just after
	// it (connection set-up included; a read-back's preload not), per
	// acknowledged event (per event read, in read-back). Zero where it
	// could not be read.
	ServerCPU loadgen.CPU `json:"server_cpu"`
	// Error is set if the run failed; Result is then partial or zero.
	Error string `json:"error,omitempty"`
}

// FileName is the record's file name in the output folder.
func (r Record) FileName() string {
	return fmt.Sprintf("%s.%s.r%d.json", r.Workload.ID, r.System.Key(), r.Run)
}

// Runner runs workloads on systems.
type Runner struct {
	// NATSBin, RedisBin and GoetheBin are the server binaries.
	NATSBin, RedisBin, GoetheBin string
	// WorkDir holds the servers' data folders, each removed after its run.
	WorkDir string
	// OutDir receives one JSON Record per run.
	OutDir string
	// PIDFile, when set, collects the PIDs of started servers.
	PIDFile string
	// Progress, when not nil, receives loadgen's progress display.
	Progress io.Writer
	// Root, when set, is cut from the front of the paths in recorded
	// command lines, so that records do not show the machine's folders.
	Root string
}

// Run runs w on s once as run number run: it starts the server with a
// fresh data folder, runs the preload (if any) and the workload, stops
// the server, writes the Record, and returns it. A failed run is recorded
// with its Error and also returned as an error.
func (r *Runner) Run(ctx context.Context, w Workload, s System, run int) (Record, error) {
	rec := Record{Workload: w, System: s, Run: run}
	err := r.run(ctx, &rec)
	if err != nil {
		rec.Error = err.Error()
	}
	if werr := WriteRecord(r.OutDir, rec); werr != nil && err == nil {
		err = werr
	}
	return rec, err
}

func (r *Runner) run(ctx context.Context, rec *Record) (err error) {
	w, s := rec.Workload, rec.System
	dir := filepath.Join(r.WorkDir, strings.TrimSuffix(rec.FileName(), ".json"))
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := StartSystem(ctx, s, r.NATSBin, r.RedisBin, r.GoetheBin, dir, r.PIDFile)
	if err != nil {
		return err
	}
	rec.Server = relArgs(r.Root, srv.Args)
	defer func() {
		if serr := srv.Stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	var open loadgen.Opener
	switch s.Name {
	case "nats":
		open = NATSOpener("nats://" + srv.Addr)
	case "redis":
		open = RedisOpener(srv.Addr)
	default: // Goethe: StartSystem refused any other
		if open, err = GoetheOpener(srv.Addr, s.Client, s.Connections); err != nil {
			return err
		}
	}
	if w.Preload != nil {
		pre, err := loadgen.Run(ctx, open, *w.Preload, r.Progress)
		rec.Preload = &pre
		if err != nil {
			return fmt.Errorf("preload: %w", err)
		}
		if pre.Produce.Events < w.Preload.Events {
			return fmt.Errorf("preload: %d of %d events acknowledged", pre.Produce.Events, w.Preload.Events)
		}
	}
	cfg := w.Config
	cfg.Label = s.Title
	// Collect the garbage of earlier runs (and the preload) now, so that
	// the client CPU measured in this run is this run's own.
	runtime.GC()
	cpu0 := markServerCPU(srv)
	rec.Result, err = loadgen.Run(ctx, open, cfg, r.Progress)
	events := rec.Result.Produce.Events
	if w.ReadBack() {
		events = rec.Result.Consume.Events
	}
	rec.ServerCPU = cpu0.until(markServerCPU(srv), events)
	if err == nil && rec.Result.Errors > 0 {
		err = fmt.Errorf("%d errors: %s", rec.Result.Errors, strings.Join(rec.Result.ErrorSamples, "; "))
	}
	if err == nil && rec.Result.Consume.Missing > 0 {
		err = fmt.Errorf("consumers missed %d events", rec.Result.Consume.Missing)
	}
	return err
}

// serverCPU is a reading of a server's CPU time and the wall clock.
type serverCPU struct {
	user, system time.Duration
	wall         time.Time
	ok           bool
}

func markServerCPU(s *Server) serverCPU {
	u, sys, err := s.CPU()
	return serverCPU{user: u, system: sys, wall: time.Now(), ok: err == nil}
}

// until returns the CPU the server used from reading a to reading b, over
// events events, or zero if either reading failed.
func (a serverCPU) until(b serverCPU, events int64) loadgen.CPU {
	if !a.ok || !b.ok {
		return loadgen.CPU{}
	}
	return loadgen.NewCPU(b.user-a.user, b.system-a.system, b.wall.Sub(a.wall), events)
}

// WriteRecord writes rec as indented JSON into dir under rec.FileName().
func WriteRecord(dir string, rec Record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, rec.FileName()), append(b, '\n'), 0o644)
}

// ReadRecords reads every Record in dir (the files named like
// Record.FileName, in name order).
func ReadRecords(dir string) ([]Record, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.r*.json"))
	if err != nil {
		return nil, err
	}
	var recs []Record
	for _, name := range names {
		if !recordName.MatchString(filepath.Base(name)) {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var rec Record
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("peers: %s: %w", name, err)
		}
		recs = append(recs, rec)
	}
	if len(recs) == 0 {
		return nil, errors.New("peers: no run records in " + dir)
	}
	return recs, nil
}

var recordName = regexp.MustCompile(`\.r[0-9]+\.json$`)

// relArgs returns args with the paths under root made relative to it.
func relArgs(root string, args []string) []string {
	out := slices.Clone(args)
	if root == "" {
		return out
	}
	prefix := strings.TrimSuffix(root, string(filepath.Separator)) + string(filepath.Separator)
	for i, a := range out {
		out[i] = strings.ReplaceAll(a, prefix, "")
	}
	return out
}
