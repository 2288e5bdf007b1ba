package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/server"
)

// config is everything the flags and environment decide.
type config struct {
	Engine         string
	DataDir        string
	Listen         string
	Sync           bool
	MaxEventBytes  int
	MaxBatchEvents int
	LogFormat      string
	// MetricsListen is the address of the Prometheus /metrics endpoint;
	// empty turns it off.
	MetricsListen string

	// Each group below keeps its flags, their validation and their wiring
	// in a file of its own.
	limits   limitsConfig   // config_limits.go: memory, streams, connections, slow consumers
	security securityConfig // config_security.go: TLS, tokens, file modes
	disk     diskConfig     // config_disk.go: free-space guard
	cluster  clusterConfig  // config_cluster.go: Raft replication
	// retention: config_retention.go: server-wide retention defaults
	retention retentionConfig
	dedupe    dedupeConfig // config_dedupe.go: idempotent produce
	fanout    fanoutConfig // config_fanout.go: sends to followers at a topic's end
}

// Defaults of the flags.
const (
	defaultDataDir = "./goethe-data"
	defaultListen  = "127.0.0.1:7420"
)

// envPrefix + the flag's name in upper case with '-' as '_' is the
// environment variable that sets a flag's default: GOETHE_DATA_DIR for
// --data-dir.
const envPrefix = "GOETHE_"

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// errHelp is returned by parseConfig after printing the usage for -h.
var errHelp = flag.ErrHelp

// parseConfig reads the configuration from args (without the program name)
// and the environment, looked up with getenv. An environment variable sets
// its flag's default; a flag on the command line wins over it. Usage and
// flag errors go to out. The error names the flag or variable at fault.
func parseConfig(args []string, getenv func(string) (string, bool), out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("goethe", flag.ContinueOnError)
	// The flag package's own messages are not printed: errors are returned
	// as one line, and the usage is printed for -h only.
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.Engine, "engine", engines.Default, "storage engine: "+strings.Join(engines.Names, ", ")+
		"; a data folder is opened only by the engine that made it")
	fs.StringVar(&c.DataDir, "data-dir", defaultDataDir, "data folder, created if missing")
	fs.StringVar(&c.Listen, "listen", defaultListen, "gRPC listen address host:port")
	fs.BoolVar(&c.Sync, "sync", true, "fsync every commit before acknowledging it. UNSAFE when false: a machine crash\n"+
		"(power loss, kernel panic) can lose acknowledged events (and may damage a bolt\n"+
		"file); on pebble, which buffers its log in memory, a process crash can too")
	fs.IntVar(&c.MaxEventBytes, "max-event-bytes", server.DefaultMaxEventBytes, "largest event accepted: payload plus header keys and values, in bytes")
	fs.IntVar(&c.MaxBatchEvents, "max-batch-events", server.DefaultMaxBatchEvents, "most events accepted in one Produce")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format on stderr: text or json")
	fs.StringVar(&c.MetricsListen, "metrics-listen", "", "serve Prometheus metrics over HTTP at /metrics on this host:port (off when empty)")
	c.limits.register(fs)
	c.security.register(fs)
	c.disk.register(fs)
	c.cluster.register(fs)
	c.retention.register(fs)
	c.dedupe.register(fs)
	c.fanout.register(fs)
	fs.Usage = func() {} // the flag package calls it on errors too; -h is handled below
	usage := func() {
		fmt.Fprintf(out, "Usage: goethe [flags]\n\n"+
			"goethe serves an append-only event log over gRPC (service goethe.v1.Goethe).\n\n"+
			"Every flag can also be set by an environment variable, GOETHE_ and the flag's name\n"+
			"in upper case with _ for - (GOETHE_DATA_DIR for --data-dir); a flag given on the\n"+
			"command line wins over its variable.\n\nFlags:\n")
		fs.SetOutput(out)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}

	// Environment variables first, as new defaults.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		v, ok := getenv(name)
		if !ok || envErr != nil {
			return
		}
		if err := fs.Set(f.Name, v); err != nil {
			envErr = fmt.Errorf("%s=%q: invalid value for --%s", name, v, f.Name)
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return c, errHelp
		}
		return c, fmt.Errorf("%v (goethe -h lists the flags)", err)
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (goethe takes only flags)", fs.Arg(0))
	}
	return c, c.validate()
}

func (c *config) validate() error {
	switch {
	case !slices.Contains(engines.Names, c.Engine):
		return fmt.Errorf("--engine %q: unknown engine (valid: %s)", c.Engine, strings.Join(engines.Names, ", "))
	case c.DataDir == "":
		return errors.New("--data-dir: must not be empty")
	case c.Listen == "":
		return errors.New("--listen: must not be empty")
	case c.MaxEventBytes <= 0:
		return fmt.Errorf("--max-event-bytes %d: must be positive", c.MaxEventBytes)
	case c.MaxBatchEvents <= 0:
		return fmt.Errorf("--max-batch-events %d: must be positive", c.MaxBatchEvents)
	case c.LogFormat != "text" && c.LogFormat != "json":
		return fmt.Errorf("--log-format %q: must be text or json", c.LogFormat)
	}
	return errors.Join(c.limits.validate(), c.security.validate(), c.disk.validate(), c.cluster.validate(), c.retention.validate(),
		c.dedupe.validate(), c.fanout.validate(), c.cluster.Security.validate(c.cluster.enabled(), &c.security, c.cluster.PeerClients.values()))
}
