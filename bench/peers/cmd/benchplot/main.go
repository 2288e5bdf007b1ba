// Command benchplot draws the layers plot of a recorded run of bench/
// (results/bench/bench.txt): what the raw engine, the store and the gRPC
// server each reach, per engine, for writes, reads and group commit.
//
//	benchplot -in results/bench/bench.txt -out results/bench/layers.svg
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/goethe-log/goethe/bench/peers/report"
)

func main() {
	in := flag.String("in", "results/bench/bench.txt", "go test -bench output")
	out := flag.String("out", "results/bench/layers.svg", "SVG file to write")
	flag.Parse()
	f, err := os.Open(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchplot:", err)
		os.Exit(1)
	}
	defer f.Close()
	med, err := report.BenchMedians(f)
	if err == nil {
		err = report.WriteLayersSVG(*out, med)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchplot:", err)
		os.Exit(1)
	}
}
