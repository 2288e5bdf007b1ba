package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/goethe-log/goethe/engines"
)

// A data folder holds a marker file naming the engine that made it, and that
// engine's files in a subfolder named after the engine:
//
//	<data-dir>/ENGINE          "leveldb\n", then "leveldb\ninitialized\n"
//	<data-dir>/leveldb/...     the engine's own files
//
// The marker is written, durably, before the engine creates anything, so a
// folder with engine files always has one. A folder is opened only by the
// engine its marker names. Once the store has been opened in it the marker
// says so (its second line), and from then on a store that would open empty
// is refused (store.Options.MustExist): the engine lost its files.
const markerFile = "ENGINE"

// initializedLine is the marker's second line once a store was opened.
const initializedLine = "initialized"

// File modes of a data folder: payloads are readable by the owner of the
// process only. New files and folders get them from the process's umask
// (restrictFileModes); prepareDataDir takes the group and other bits off
// what an older goethe made with 0644 and 0755.
const (
	dirMode      fs.FileMode = 0o700
	fileMode     fs.FileMode = 0o600
	privateUmask             = 0o077 // the bits no data file or folder has
)

// markInitialized records in dir's marker that a store was opened in it.
func markInitialized(dir, engine string) error {
	if err := writeMarker(dir, engine+"\n"+initializedLine); err != nil {
		return fmt.Errorf("data folder %s: write %s: %w", dir, markerFile, unwrapPathError(err))
	}
	return nil
}

// prepareDataDir makes sure dir is a data folder of engine, creating it (and
// its marker) when it is missing or empty, and returns the folder the engine
// keeps its files in and whether a store was opened in it before. It
// refuses a folder made by another engine, naming both, and a non-empty
// folder without a marker, which is not a goethe data folder.
func prepareDataDir(dir, engine string) (string, bool, error) {
	initialized := false
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return "", false, fmt.Errorf("data folder %s: %w", dir, unwrapPathError(err))
	}
	marker := filepath.Join(dir, markerFile)
	b, err := os.ReadFile(marker)
	switch {
	case err == nil:
		var made string
		made, initialized = parseMarker(b)
		if !slices.Contains(engines.Names, made) {
			return "", false, fmt.Errorf("data folder %s: %s names unknown engine %q", dir, markerFile, made)
		}
		if made != engine {
			return "", false, fmt.Errorf("data folder %s was made by engine %s, not %s: start with --engine %s, or use another --data-dir",
				dir, made, engine, made)
		}
		if err := restrictModes(dir); err != nil {
			return "", false, fmt.Errorf("data folder %s: %w", dir, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		entries, err := os.ReadDir(dir)
		if err != nil {
			return "", false, fmt.Errorf("data folder %s: %w", dir, unwrapPathError(err))
		}
		entries = slices.DeleteFunc(entries, func(e fs.DirEntry) bool {
			return e.Name() == markerFile+".tmp" // left by a crash while writing the marker
		})
		if len(entries) > 0 {
			return "", false, fmt.Errorf("data folder %s is not empty and has no %s file, so it is not a goethe data folder: use an empty or new folder",
				dir, markerFile)
		}
		if err := writeMarker(dir, engine); err != nil {
			return "", false, fmt.Errorf("data folder %s: write %s: %w", dir, markerFile, unwrapPathError(err))
		}
	default:
		return "", false, fmt.Errorf("data folder %s: %w", dir, unwrapPathError(err))
	}
	return filepath.Join(dir, engine), initialized, nil
}

// parseMarker reads a marker's content: the engine it names and whether a
// store was opened in the folder.
func parseMarker(b []byte) (engine string, initialized bool) {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[0]), len(lines) > 1 && strings.TrimSpace(lines[1]) == initializedLine
}

// writeMarker writes the marker (its lines, without the last newline)
// through a temporary file and a rename, with fsyncs, so that it is either
// whole or absent after a crash.
func writeMarker(dir, content string) error {
	tmp := filepath.Join(dir, markerFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, markerFile)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// unwrapPathError drops the path of a *fs.PathError, which the caller's
// message already names, keeping "mkdir"-style context short.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Err != nil {
		return fmt.Errorf("%s %s: %w", pe.Op, filepath.Base(pe.Path), pe.Err)
	}
	return err
}

// restrictModes takes the group and other permission bits off dir and
// everything under it (symbolic links are not followed), so that a folder
// made before goethe kept its data private becomes private. The error
// names the file it could not change.
func restrictModes(dir string) error {
	// The walk runs before the engine's lock is taken: a goethe already
	// serving the folder may remove files under it meanwhile (pebble
	// rotates its OPTIONS and logs), so a file gone is skipped, and the
	// engine's lock then reports the folder in use.
	gone := func(err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return unwrapPathError(err)
	}
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return gone(err)
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return gone(err)
		}
		if m := info.Mode().Perm(); m&privateUmask != 0 {
			if err := os.Chmod(path, m&^privateUmask); err != nil {
				return gone(err)
			}
		}
		return nil
	})
}
