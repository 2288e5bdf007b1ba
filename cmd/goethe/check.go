package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/engines"
	"github.com/goethe-log/goethe/store"
)

// Exit statuses of goethe check.
const (
	checkClean    = 0 // no problem found (warnings may be listed)
	checkProblems = 1 // the folder is damaged: the report lists what and what to do
	checkCannot   = 2 // bad flags, or the folder could not be checked (missing, not a goethe folder, in use)
)

// checkSynopsis is the subcommand's line in goethe -h.
const checkSynopsis = "goethe check --data-dir D [--engine E] [--json]\n" +
	"\tverify a stopped data folder fully and print a report; exit status 0 clean,\n" +
	"\t1 problems found, 2 cannot check (goethe check -h for more)"

const checkUsage = `Usage: goethe check [--data-dir D] [--engine E] [--json]

goethe check verifies a stopped data folder fully: the format record, the
topic catalog and metadata, every event of every topic (its checksum, ids
increasing, seqs dense, the last event being the one the topic's metadata
records), and every consumer cursor (its topic exists, it is not past the
topic's last event). It prints one line per topic, then each problem with
what the operator can do, then the totals.

It writes nothing itself, but it opens the folder's engine, which replays
the engine's journal as a server start would (after a crash, that recovers
the torn tail the crash left). A folder in use by a running goethe is
refused: stop the server first.

Exit status: 0 clean (warnings, such as records of unknown kinds, may be
listed), 1 problems found, 2 bad flags or the folder cannot be checked
(missing, not a goethe data folder, in use).

--data-dir and --engine also take their values from GOETHE_DATA_DIR and
GOETHE_ENGINE, as the server's flags do.

Flags:
`

// runCheck is goethe check: it verifies the data folder named by the flags
// and prints the report on stdout; errors that prevent the check go to
// stderr as one line. It returns the exit status.
func runCheck(args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("goethe check", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	fset.Usage = func() {}
	dataDir := fset.String("data-dir", defaultDataDir, "data folder to check; it is not created")
	engineName := fset.String("engine", "", "engine the folder must have been made by (default: the one its ENGINE file names)")
	asJSON := fset.Bool("json", false, "print the report as one JSON object")
	for _, name := range []string{"data-dir", "engine"} {
		if v, ok := getenv(envName(name)); ok {
			_ = fset.Set(name, v) // strings: never fails
		}
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, checkUsage)
			fset.SetOutput(stdout)
			fset.PrintDefaults()
			return checkClean
		}
		fmt.Fprintf(stderr, "goethe check: %v (goethe check -h lists the flags)\n", err)
		return checkCannot
	}
	if fset.NArg() > 0 {
		fmt.Fprintf(stderr, "goethe check: unexpected argument %q (goethe check takes only flags)\n", fset.Arg(0))
		return checkCannot
	}
	if *engineName != "" && !slices.Contains(engines.Names, *engineName) {
		fmt.Fprintf(stderr, "goethe check: --engine %q: unknown engine (valid: %s)\n", *engineName, strings.Join(engines.Names, ", "))
		return checkCannot
	}
	if *dataDir == "" {
		fmt.Fprintln(stderr, "goethe check: --data-dir: must not be empty")
		return checkCannot
	}
	res, err := checkDataDir(*dataDir, *engineName)
	if err != nil {
		fmt.Fprintf(stderr, "goethe check: %v\n", err)
		return checkCannot
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(stderr, "goethe check: write report: %v\n", err)
			return checkCannot
		}
	} else {
		res.print(stdout)
	}
	if !res.Clean {
		return checkProblems
	}
	return checkClean
}

// checkResult is goethe check's report: the folder, and what store.Check
// found in it, or why the engine would not open.
type checkResult struct {
	DataDir string `json:"data_dir"`
	Engine  string `json:"engine"`
	Clean   bool   `json:"clean"`
	// Note says why no store check ran, when none did: a folder that
	// never held a log, or an engine that refused to open (then Clean is
	// false).
	Note   string             `json:"note,omitempty"`
	Report *store.CheckReport `json:"report,omitempty"`
}

// checkDataDir checks the data folder dir. Its error means the folder
// could not be checked; damage is in the result.
func checkDataDir(dir, want string) (*checkResult, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("data folder %s does not exist", dir)
	case err != nil:
		return nil, fmt.Errorf("data folder %s: %w", dir, unwrapPathError(err))
	case !fi.IsDir():
		return nil, fmt.Errorf("data folder %s is not a folder", dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, markerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is not a goethe data folder: it has no %s file", dir, markerFile)
	}
	if err != nil {
		return nil, fmt.Errorf("data folder %s: read %s: %w", dir, markerFile, unwrapPathError(err))
	}
	made, initialized := parseMarker(b)
	switch {
	case !slices.Contains(engines.Names, made):
		return nil, fmt.Errorf("data folder %s: %s names unknown engine %q", dir, markerFile, made)
	case want != "" && want != made:
		return nil, fmt.Errorf("data folder %s was made by engine %s, not %s: check it with --engine %s, or without --engine", dir, made, want, made)
	}
	res := &checkResult{DataDir: dir, Engine: made}
	engineDir := filepath.Join(dir, made)
	if _, err := os.Stat(engineDir); errors.Is(err, fs.ErrNotExist) {
		// Opening the engine would create an empty one: say what is there.
		if !initialized {
			res.Clean, res.Note = true, "the folder holds no log yet: no goethe has started in it"
			return res, nil
		}
		res.Note = fmt.Sprintf("the engine's folder %s is missing, though %s says a log was kept here: "+
			"restore the data folder from a backup, or move it aside to start empty", made, markerFile)
		return res, nil
	}
	eng, err := engines.Open(made, engineDir)
	if errors.Is(err, engine.ErrLocked) {
		return nil, fmt.Errorf("data folder %s is in use by a running goethe (%s holds its lock): "+
			"goethe check verifies stopped folders only; stop the server first", dir, made)
	}
	if errors.Is(err, engine.ErrCorrupted) {
		res.Note = fmt.Sprintf("the %s engine refuses to open: %v: restore the data folder from a backup", made, err)
		return res, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s data in %s: %w", made, engineDir, err)
	}
	r, err := store.Check(eng, store.CheckOptions{AllowEmpty: !initialized})
	if cerr := eng.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close: %w", cerr)
	}
	if err != nil {
		return nil, fmt.Errorf("data folder %s: %w", dir, err)
	}
	res.Report, res.Clean = r, r.Clean()
	return res, nil
}

// print writes the report for a person: one line per topic, each problem
// and warning with what to do, then the totals.
func (res *checkResult) print(w io.Writer) {
	fmt.Fprintf(w, "goethe check: data folder %s (engine %s)\n", res.DataDir, res.Engine)
	r := res.Report
	if r == nil {
		if res.Clean {
			fmt.Fprintf(w, "CLEAN: %s\n", res.Note)
		} else {
			fmt.Fprintf(w, "PROBLEM: %s\n", res.Note)
		}
		return
	}
	if r.Format != 0 {
		legacy := ""
		if r.Legacy {
			legacy = " (upgraded from format 1: older events carry no checksum)"
		}
		fmt.Fprintf(w, "format version %d%s\n", r.Format, legacy)
	}
	if len(r.Topics) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "topic\tevents\tfirst seq\tlast seq\tbytes\t")
		for _, t := range r.Topics {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", t.Name, t.Events, t.FirstSeq, t.LastSeq, t.Bytes)
		}
		_ = tw.Flush()
	}
	printFindings(w, "problem", r.Problems, r.ProblemCount)
	printFindings(w, "warning", r.Warnings, r.WarningCount)
	verdict := "CLEAN"
	if !r.Clean() {
		verdict = fmt.Sprintf("%d PROBLEM(S)", r.ProblemCount)
	}
	fmt.Fprintf(w, "%s: %d topics, %d events (%d bytes), %d cursors checked in %.3fs\n",
		verdict, len(r.Topics), r.Events, r.Bytes, r.Cursors, r.Duration.Seconds())
	if r.Reclaiming > 0 {
		fmt.Fprintf(w, "%d event records of deleted topics are still to be removed: the server does it in the background\n", r.Reclaiming)
	}
}

func printFindings(w io.Writer, kind string, fs []store.Finding, total int) {
	if total == 0 {
		return
	}
	fmt.Fprintf(w, "%ss (%d):\n", kind, total)
	for _, f := range fs {
		where := ""
		switch {
		case f.Topic != "" && f.Seq != 0:
			where = fmt.Sprintf("[topic %q, seq %d] ", f.Topic, f.Seq)
		case f.Topic != "":
			where = fmt.Sprintf("[topic %q] ", f.Topic)
		}
		fmt.Fprintf(w, "  %s%s\n", where, f.What)
		if f.Key != "" {
			fmt.Fprintf(w, "    key: %s\n", f.Key)
		}
		fmt.Fprintf(w, "    what to do: %s\n", f.Fix)
	}
	if total > len(fs) {
		fmt.Fprintf(w, "  ... and %d more %ss not listed\n", total-len(fs), kind)
	}
}
