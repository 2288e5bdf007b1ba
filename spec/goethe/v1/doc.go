// Package goethev1 is the generated Go code of goethe.proto, Goethe's wire
// API (package goethe.v1): the Goethe service, its messages, and the
// gRPC client and server stubs. Regenerate it with spec/gen.sh (make spec);
// do not edit the *.pb.go files by hand. The .proto file beside them is the
// reference for what every field and call guarantees.
package goethev1
