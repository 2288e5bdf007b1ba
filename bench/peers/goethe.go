package peers

import (
	"fmt"

	"github.com/goethe-log/goethe/loadgen"
)

// Goethe client shapes: how the load generator's producers reach a Goethe
// server (System.Client, the matrix's -goethe-client).
const (
	// GoetheAsync: one client connection shared by every producer of a
	// run, each producer goroutine sending its events through the client's
	// asynchronous Producer and waiting for its own acknowledgements, as an
	// application's goroutines would (loadgen.GoetheOpenerWith, mode async).
	GoetheAsync = "async"
	// GoetheStream: a connection and a ProduceStream per producer, one
	// request in flight on each (loadgen.GoetheOpener).
	GoetheStream = "stream"
	// GoetheUnary: a connection per producer, one unary Produce call per
	// request (loadgen.GoetheUnaryOpener).
	GoetheUnary = "unary"
)

// ClientShapes describes each client shape in a sentence, for summaries.
var ClientShapes = map[string]string{
	GoetheAsync:  "one client connection shared by all producers; each producer goroutine sends through the asynchronous Producer and waits for its own acks",
	GoetheStream: "a connection and a ProduceStream per producer, one request in flight on each",
	GoetheUnary:  "a connection per producer, one unary Produce call per request",
}

// GoetheOpener returns the Opener of Targets on the Goethe server at addr
// with the given client shape.
func GoetheOpener(addr, client string) (loadgen.Opener, error) {
	switch client {
	case GoetheStream, "":
		return loadgen.GoetheOpener(addr), nil
	case GoetheUnary:
		return loadgen.GoetheUnaryOpener(addr), nil
	case GoetheAsync:
		return nil, fmt.Errorf("peers: goethe client shape %q: loadgen.GoetheOpenerWith is not in this build yet", client)
	}
	return nil, fmt.Errorf("peers: unknown goethe client shape %q (want %s, %s or %s)", client, GoetheAsync, GoetheStream, GoetheUnary)
}
