#!/usr/bin/env python3
"""Draws Produce p99 with 0 and 2,000 followers, fan-out rounds and gate.

    results/bench/fanout/rounds/plot.py [DIR]

Reads DIR/{leveldb,pebble,bolt}.txt (BenchmarkFanoutProduceChild),
DIR/{leveldb,pebble,bolt}-onecpu.txt (BenchmarkFanoutProduceChildOneCPU)
and DIR/{leveldb,pebble,bolt}-wire.txt (BenchmarkFanoutProduceWire, rounds
only), go test -bench output of several rounds from run.sh, and writes
DIR/p99.svg: one panel per producer pace (closed loop, one Produce per
10 ms, per 40 ms) and placement of the followers' process, one group of
bars per engine: the median over rounds of p99-µs with no followers
(rounds and gate pooled: neither acts there), and with 2,000 followers
each sending for itself through the gate (--fanout-solo) and in rounds
(the default); a tick marks the target, 2× the no-follower p99. The
drawing is ../gate/plot.py's, with these panels, bars and files. Log
scale. Plain SVG, no dependencies.
"""
import importlib.util
import sys
from pathlib import Path

spec = importlib.util.spec_from_file_location("gateplot", Path(__file__).resolve().parent.parent / "gate" / "plot.py")
plot = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot)

plot.PANELS = [
    ("FanoutProduceChild", "0s", "closed loop (machine saturated)"),
    ("FanoutProduceChild", "10ms", "1 Produce / 10 ms"),
    ("FanoutProduceChild", "40ms", "1 Produce / 40 ms"),
    ("FanoutProduceChildOneCPU", "0s", "followers on 1 CPU, closed loop"),
    ("FanoutProduceChildOneCPU", "10ms", "followers on 1 CPU, 1 / 10 ms"),
    ("FanoutProduceChildOneCPU", "40ms", "followers on 1 CPU, 1 / 40 ms"),
    ("FanoutProduceWire", "0s", "wire followers, closed loop"),
    ("FanoutProduceWire", "10ms", "wire followers, 1 / 10 ms"),
    ("FanoutProduceWire", "40ms", "wire followers, 1 / 40 ms"),
]
plot.FILES = ["{eng}.txt", "{eng}-onecpu.txt", "{eng}-wire.txt"]
plot.BARS = [(0, "on", "#999999", "0 followers"), (2000, "on", "#b2182b", "2,000, each for itself (gate)"),
             (2000, "rounds", "#2166ac", "2,000, rounds")]
plot.COLS, plot.LEGEND_STEP = 3, 200

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.argv.append(str(Path(__file__).resolve().parent))
    plot.main()
