// Command fsyncrate measures the disk's appending-fsync rate in a folder:
// records appended to a fresh file, fdatasync after each, for a while, at
// each record size given; it prints the rates (or, with -json, one JSON
// document per size). See package fsyncrate.
//
//	fsyncrate -dir bench/peers/.work/data -sizes 100,4096 -duration 2s
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/goethe-log/goethe/bench/peers/fsyncrate"
)

func main() {
	dir := flag.String("dir", ".", "folder on the file system to measure (a probe file is created and removed)")
	sizes := flag.String("sizes", "100,4096", "record sizes in bytes, comma-separated")
	duration := flag.Duration("duration", 2*time.Second, "how long to append at each size")
	jsonOut := flag.Bool("json", false, "print one JSON document per size")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			fmt.Fprintf(os.Stderr, "fsyncrate: -sizes: %q is not a number of bytes\n", s)
			os.Exit(2)
		}
		res, err := fsyncrate.Measure(ctx, fsyncrate.Options{Dir: *dir, RecordBytes: n, Duration: *duration})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if *jsonOut {
			b, _ := json.Marshal(res)
			fmt.Println(string(b))
		} else {
			fmt.Println(res)
		}
	}
}
