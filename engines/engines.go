// Package engines is the one place that maps an engine's name to its adapter.
// Callers (the server's flags, benchmarks) name an engine; nothing registers
// itself.
package engines

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goethe-log/goethe/bolt"
	"github.com/goethe-log/goethe/engine"
	"github.com/goethe-log/goethe/leveldb"
	"github.com/goethe-log/goethe/pebble"
)

// Names lists the engines Open knows, in the order the project presents them.
var Names = []string{"leveldb", "pebble", "bolt"}

// Default is the engine used when none is named.
const Default = "leveldb"

// ErrUnknownEngine is wrapped by Open's error for a name not in Names.
var ErrUnknownEngine = errors.New("engines: unknown engine")

// Open opens the engine called name on the data folder dir, with that
// adapter's default options. It fails with an error wrapping
// ErrUnknownEngine, listing the valid names, if name is not one of Names;
// otherwise its errors are the adapter's Open errors (engine.ErrLocked when
// another engine holds dir).
func Open(name, dir string) (engine.Engine, error) {
	switch name {
	case "leveldb":
		return nilIfErr(leveldb.Open(dir, leveldb.Options{}))
	case "pebble":
		return nilIfErr(pebble.Open(dir, pebble.Options{}))
	case "bolt":
		return nilIfErr(bolt.Open(dir, bolt.Options{}))
	}
	return nil, fmt.Errorf("%w %q (valid: %s)", ErrUnknownEngine, name, strings.Join(Names, ", "))
}

// nilIfErr returns a nil interface, not an interface holding a nil pointer,
// when Open fails.
func nilIfErr[T engine.Engine](db T, err error) (engine.Engine, error) {
	if err != nil {
		return nil, err
	}
	return db, nil
}
