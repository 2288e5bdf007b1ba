// Package fsyncrate measures a disk's appending-fsync rate: how many times a
// second one writer can append a small record to a file and make it durable
// (fdatasync) before the next. A log that acknowledges each event only once
// it is on disk, one event at a time, cannot beat this rate; a log that
// groups events can, by as many events as it puts in each sync.
//
// # Basics
//
// Measure appends RecordBytes-sized records to a fresh file for a while,
// calling fdatasync (fsync where there is none) after each, and reports
// the rate. The file grows as a write-ahead log does, so every sync also
// commits a size change: the cost an appending log pays, which a rewrite
// in place (dd conv=notrunc) would not show.
//
// # Caveats
//
// The rate depends on the file system and on what else the disk does at
// the time: measure it in the same run, on the same file system, as the
// figures it is read against.
package fsyncrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ErrInvalid is wrapped by Measure's error for options it cannot run.
var ErrInvalid = errors.New("fsyncrate: invalid options")

// Options say what to measure.
type Options struct {
	// Dir is where the probe file is created (then removed): a folder on
	// the file system being measured.
	Dir string
	// RecordBytes is the size of each appended record, at least 1.
	RecordBytes int
	// Duration is how long to append, at least one append; Measure stops
	// early once MaxWrites appends are done, if MaxWrites is set.
	Duration  time.Duration
	MaxWrites int64
}

// Result is one measurement.
type Result struct {
	// RecordBytes is Options.RecordBytes.
	RecordBytes int `json:"record_bytes"`
	// Writes is how many records were appended and synced.
	Writes int64 `json:"writes"`
	// Seconds is their total time.
	Seconds float64 `json:"seconds"`
	// PerSec is Writes / Seconds: the appending-fsync rate.
	PerSec float64 `json:"writes_per_s"`
	// Sync names the call made after each append: "fdatasync" or "fsync".
	Sync string `json:"sync"`
}

// String reads like "5,310 appending fdatasyncs/s of 100 B (10,620 in 2.0 s)".
func (r Result) String() string {
	return fmt.Sprintf("%.0f appending %ss/s of %d B (%d in %.2f s)", r.PerSec, r.Sync, r.RecordBytes, r.Writes, r.Seconds)
}

// Measure appends records to a new file in o.Dir, syncing each, for
// o.Duration (or until o.MaxWrites), and returns the rate. It removes the
// file before it returns. ctx ending stops it early with ctx's error.
func Measure(ctx context.Context, o Options) (Result, error) {
	res := Result{RecordBytes: o.RecordBytes, Sync: syncName}
	switch {
	case o.RecordBytes < 1:
		return res, fmt.Errorf("%w: record size %d", ErrInvalid, o.RecordBytes)
	case o.Duration <= 0 && o.MaxWrites <= 0:
		return res, fmt.Errorf("%w: neither a duration nor a number of writes", ErrInvalid)
	case o.Duration < 0 || o.MaxWrites < 0:
		return res, fmt.Errorf("%w: negative duration or number of writes", ErrInvalid)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return res, fmt.Errorf("fsyncrate: %w", err)
	}
	f, err := os.CreateTemp(o.Dir, "fsyncrate-*.probe")
	if err != nil {
		return res, fmt.Errorf("fsyncrate: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// The directory entry is made durable first, so that the loop measures
	// appends to an existing file, as a log's steady state does.
	if err := f.Sync(); err != nil {
		return res, fmt.Errorf("fsyncrate: sync %s: %w", f.Name(), err)
	}
	if err := syncDir(filepath.Dir(f.Name())); err != nil {
		return res, err
	}

	record := make([]byte, o.RecordBytes)
	for i := range record {
		record[i] = byte('a' + i%26)
	}
	start := time.Now()
	deadline := start.Add(o.Duration)
	var elapsed time.Duration
	for {
		if _, err := f.Write(record); err != nil {
			return res, fmt.Errorf("fsyncrate: append to %s: %w", f.Name(), err)
		}
		if err := datasync(f); err != nil {
			return res, fmt.Errorf("fsyncrate: %s %s: %w", syncName, f.Name(), err)
		}
		res.Writes++
		now := time.Now()
		elapsed = now.Sub(start)
		if o.MaxWrites > 0 && res.Writes >= o.MaxWrites {
			break
		}
		if o.Duration > 0 && !now.Before(deadline) {
			break
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	res.Seconds = elapsed.Seconds()
	if res.Seconds > 0 {
		res.PerSec = float64(res.Writes) / res.Seconds
	}
	return res, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsyncrate: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsyncrate: sync %s: %w", dir, err)
	}
	return nil
}
