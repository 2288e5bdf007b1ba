// Package bench holds Goethe's benchmarks: the store against the raw engine
// doing the same keyed-prefix writes and scans, per engine, so that the
// store's overhead reads as a ratio. Run them with `make bench`; recorded
// runs and their analysis live in results/.
//
// Every benchmark sets durability explicitly (engine defaults differ),
// reports bytes with b.SetBytes and an events/s metric, and names its
// parameters in the sub-benchmark name: engine=pebble/sync=true/size=100B.
package bench
