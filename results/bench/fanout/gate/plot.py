#!/usr/bin/env python3
"""Draws Produce p99 with 0 and 2,000 followers, fan-out gate off and on.

    results/bench/fanout/gate/plot.py [DIR]

Reads DIR/{leveldb,pebble,bolt}.txt (go test -bench output of
BenchmarkFanoutProduce and BenchmarkFanoutProduceChild, several rounds)
and writes DIR/p99.svg: one panel per variant (followers in the process
or in a niced child; closed-loop or one Produce per 40 ms), one group of
bars per engine: the median over rounds of p99-µs with no followers (gate
on and off pooled: it never acts there), and
with 2,000 followers gate off and gate on; a tick marks the target, 2× the
no-follower p99. Log scale. Plain SVG, no dependencies.
"""
import math
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

LINE = re.compile(r"^Benchmark(FanoutProduce\w*)/engine=(\w+)/sync=\w+/size=\w+/followers=(\d+)/gate=(\w+)/interval=(\w+)-\d+\s+\d+\s+(.*)$")
ENGINES = ["leveldb", "pebble", "bolt"]
PANELS = [
    ("FanoutProduce", "0s", "followers in the process, closed loop"),
    ("FanoutProduceChild", "0s", "followers in a niced child, closed loop"),
    ("FanoutProduce", "40ms", "followers in the process, 1 Produce / 40 ms"),
    ("FanoutProduceChild", "40ms", "followers in a niced child, 1 Produce / 40 ms"),
]
BARS = [(0, "on", "#999999", "0 followers"), (2000, "off", "#b2182b", "2,000, gate off"),
        (2000, "on", "#2166ac", "2,000, gate on")]
COLS, LEGEND_STEP = 2, 140  # panels per row; legend entries' spacing (px)
FILES = ["{eng}.txt"]  # the raw files read for each engine


def load(d):
    runs = defaultdict(list)
    for eng in ENGINES:
        lines = []
        for f in FILES:
            p = d / f.format(eng=eng)
            if p.exists():
                lines += p.read_text().splitlines()
        for line in lines:
            m = LINE.match(line)
            if not m:
                continue
            fields = m.group(6).split()
            for value, unit in zip(fields[::2], fields[1::2]):
                if unit == "p99-µs":
                    # With no followers the gate never acts: both settings
                    # are one sample of the same code.
                    gate = "on" if m.group(3) == "0" else m.group(4)
                    runs[(m.group(1), m.group(2), int(m.group(3)), gate, m.group(5))].append(float(value))
    return {k: statistics.median(v) for k, v in runs.items()}


def main():
    d = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
    med = load(d)
    w, h, pad_l, pad_r, pad_t, pad_b = 460, 300, 64, 16, 40, 40
    cols = COLS
    rows = (len(PANELS) + cols - 1) // cols
    W, H = cols * w, rows * h + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           'font-family="Liberation Sans,Arial,Helvetica,sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    values = [v for v in med.values() if v > 0]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    for i, (bench, interval, title) in enumerate(PANELS):
        x0, y0 = (i % cols) * w, (i // cols) * h
        pw, ph = w - pad_l - pad_r, h - pad_t - pad_b

        def py(v):
            return y0 + pad_t + ph * (1 - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)))

        out.append(f'<text x="{x0 + w / 2}" y="{y0 + 20}" text-anchor="middle" font-weight="bold">Produce p99: {title}</text>')
        out.append(f'<rect x="{x0 + pad_l}" y="{y0 + pad_t}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
        e = math.log10(lo)
        while e <= math.log10(hi) + 1e-9:
            v = 10 ** e
            label = f"{v / 1000:g} ms" if v >= 1000 else f"{v:g} µs"
            out.append(f'<line x1="{x0 + pad_l}" x2="{x0 + pad_l + pw}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#eee"/>')
            out.append(f'<text x="{x0 + pad_l - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{label}</text>')
            e += 1
        gw = pw / len(ENGINES)
        bw = gw / (len(BARS) + 1)
        for j, eng in enumerate(ENGINES):
            gx = x0 + pad_l + j * gw + bw / 2
            out.append(f'<text x="{gx + bw * len(BARS) / 2:.1f}" y="{y0 + pad_t + ph + 16}" text-anchor="middle">{eng}</text>')
            for k, (f, gate, color, _) in enumerate(BARS):
                v = med.get((bench, eng, f, gate, interval))
                if not v:
                    continue
                top = py(v)
                out.append(f'<rect x="{gx + k * bw:.1f}" y="{top:.1f}" width="{bw * 0.9:.1f}" '
                           f'height="{y0 + pad_t + ph - top:.1f}" fill="{color}"/>')
            base = med.get((bench, eng, 0, "on", interval))
            if base:
                t = py(2 * base)
                out.append(f'<line x1="{gx:.1f}" x2="{gx + bw * len(BARS):.1f}" y1="{t:.1f}" y2="{t:.1f}" '
                           'stroke="black" stroke-dasharray="4,3"/>')
    lx = 20
    for _, _, color, label in BARS:
        out.append(f'<rect x="{lx}" y="{H - 20}" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{lx + 16}" y="{H - 10}">{label}</text>')
        lx += LEGEND_STEP
    out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{H - 14}" y2="{H - 14}" stroke="black" stroke-dasharray="4,3"/>')
    out.append(f'<text x="{lx + 30}" y="{H - 10}">target: 2 × p99 with 0 followers (median of rounds)</text>')
    out.append("</svg>")
    (d / "p99.svg").write_text("\n".join(out) + "\n")
    print(f"wrote {d / 'p99.svg'}")


if __name__ == "__main__":
    main()
