//go:build pin

// Package pin holds requirements that go mod tidy would otherwise drop.
//
// google.golang.org/genproto before its split into submodules also held
// googleapis/rpc/errdetails, which goethe imports from the split-off
// google.golang.org/genproto/googleapis/rpc. cockroachdb/errors (through
// pebble) requires a 2023 genproto; without a newer one required here, an
// application that builds goethe in a go.work beside a module that loads
// that genproto fails with "ambiguous import: found package
// google.golang.org/genproto/googleapis/rpc/errdetails in multiple
// modules". Requiring a current genproto, which no longer holds that
// package, removes the ambiguity. The build tag keeps this file out of
// every build; go mod tidy still reads it.
package pin

import _ "google.golang.org/genproto/googleapis/type/date"
