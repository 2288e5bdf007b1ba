package peers

import (
	"fmt"

	"github.com/goethe-log/goethe/loadgen"
)

// Goethe client shapes: how the load generator's producers reach a Goethe
// server (System.Client, the matrix's -goethe-client): the modes of
// loadgen.GoetheOpenerWith.
const (
	// GoetheAsync: the producers share one client connection (or
	// System.Connections) and its asynchronous Producer; each producer
	// goroutine sends and waits for its own acknowledgements, as an
	// application's goroutines would.
	GoetheAsync = string(loadgen.GoetheAsync)
	// GoetheStream: a connection and a ProduceStream per producer, one
	// request in flight on each.
	GoetheStream = string(loadgen.GoetheStream)
	// GoetheUnary: a connection per producer, one unary Produce call per
	// request.
	GoetheUnary = string(loadgen.GoetheUnary)
)

// ClientShapes describes each client shape in a sentence, for summaries.
var ClientShapes = map[string]string{
	GoetheAsync:  "one client connection shared by all producers; each producer goroutine sends through the asynchronous Producer and waits for its own acks",
	GoetheStream: "a connection and a ProduceStream per producer, one request in flight on each",
	GoetheUnary:  "a connection per producer, one unary Produce call per request",
}

// GoetheOpener returns the Opener of Targets on the Goethe server at addr
// with the given client shape ("" is GoetheStream, the shape of records
// made before shapes were recorded). connections is how many client
// connections the producers share in GoetheAsync mode (0 means 1); in the
// other shapes each producer has its own.
func GoetheOpener(addr, client string, connections int) (loadgen.Opener, error) {
	o := loadgen.GoetheOptions{Mode: loadgen.GoetheMode(client)}
	switch client {
	case "":
		o.Mode = loadgen.GoetheStream
	case GoetheAsync:
		o.Connections = max(connections, 1)
	case GoetheStream, GoetheUnary:
	default:
		return nil, fmt.Errorf("peers: unknown goethe client shape %q (want %s, %s or %s)", client, GoetheAsync, GoetheStream, GoetheUnary)
	}
	return loadgen.GoetheOpenerWith(addr, o), nil
}
