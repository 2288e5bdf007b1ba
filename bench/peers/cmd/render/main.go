// Command render reads the records a matrix run wrote into a folder (one
// JSON file per run, and machine.json) and writes into the same folder
// summary.md (a table per workload, Goethe's ratios to the best peer at
// matched durability, the machine, versions and commands), throughput.svg
// and latency.svg.
//
//	render -in results/e2e/run [-out DIR]
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/goethe-log/goethe/bench/peers"
	"github.com/goethe-log/goethe/bench/peers/report"
)

func main() {
	in := flag.String("in", "", "folder of the matrix's JSON records")
	out := flag.String("out", "", "folder for summary.md and the SVG plots (default: -in)")
	flag.Parse()
	if *in == "" {
		fmt.Fprintln(os.Stderr, "render: -in is required")
		os.Exit(2)
	}
	if *out == "" {
		*out = *in
	}
	if err := render(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
}

func render(in, out string) error {
	recs, err := peers.ReadRecords(in)
	if err != nil {
		return err
	}
	m, err := peers.ReadMachine(in)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	r := report.New(m, recs)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	if err := r.WritePlots(out); err != nil {
		return err
	}
	var b bytes.Buffer
	if err := r.WriteSummary(&b); err != nil {
		return err
	}
	path := filepath.Join(out, "summary.md")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Printf("render: %d records -> %s, %s, %s\n", len(recs), path,
		filepath.Join(out, report.ThroughputSVG), filepath.Join(out, report.LatencySVG))
	return nil
}
