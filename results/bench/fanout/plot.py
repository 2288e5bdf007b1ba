#!/usr/bin/env python3
"""Draws p99 latency against followers from the fan-out benchmarks.

    results/bench/fanout/plot.py [DIR]

Reads DIR/before.txt and DIR/after.txt (go test -bench output of
bench/fanout_bench_test.go, several runs each) and writes DIR/p99.svg: one
panel per benchmark (store Append, gRPC Produce), the median over runs of
p99-us per engine and follower count, before (dashed) and after (solid), on
a log scale. Plain SVG, no dependencies.
"""
import math
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path

LINE = re.compile(r"^Benchmark(Fanout\w+)/engine=(\w+)/sync=\w+/size=\w+/followers=(\d+)-\d+\s+\d+\s+(.*)$")
FOLLOWERS = [0, 10, 100, 1000, 2000]
COLORS = {"leveldb": "#1b7837", "pebble": "#2166ac", "bolt": "#b2182b"}
PANELS = [
    ("FanoutAppend", "Store Append, fsync'd, 1 event of 100 B"),
    ("FanoutProduce", "gRPC Produce, fsync'd, 1 event of 100 B"),
]


def load(path, metric):
    runs = defaultdict(list)
    for line in Path(path).read_text().splitlines():
        m = LINE.match(line)
        if not m:
            continue
        fields = m.group(4).split()
        for value, unit in zip(fields[::2], fields[1::2]):
            if unit == metric:
                runs[(m.group(1), m.group(2), int(m.group(3)))].append(float(value))
    return {k: statistics.median(v) for k, v in runs.items()}


def main():
    d = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
    sides = {side: load(d / f"{side}.txt", "p99-µs") for side in ("before", "after")}
    w, h, pad_l, pad_r, pad_t, pad_b = 460, 320, 64, 16, 40, 48
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w}" height="{h + 40}" '
           'font-family="Liberation Sans,Arial,Helvetica,sans-serif" font-size="12">',
           f'<rect width="{2 * w}" height="{h + 40}" fill="white"/>']
    values = [v for s in sides.values() for v in s.values() if v > 0]
    lo = 10 ** math.floor(math.log10(min(values)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    for i, (bench, title) in enumerate(PANELS):
        x0 = i * w
        pw, ph = w - pad_l - pad_r, h - pad_t - pad_b

        def px(j):
            return x0 + pad_l + pw * j / (len(FOLLOWERS) - 1)

        def py(v):
            return pad_t + ph * (1 - (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)))

        out.append(f'<text x="{x0 + w / 2}" y="20" text-anchor="middle" font-weight="bold">{title}</text>')
        out.append(f'<rect x="{x0 + pad_l}" y="{pad_t}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
        e = math.log10(lo)
        while e <= math.log10(hi) + 1e-9:
            v = 10 ** e
            label = f"{v / 1000:g} ms" if v >= 1000 else f"{v:g} µs"
            out.append(f'<line x1="{x0 + pad_l}" x2="{x0 + pad_l + pw}" y1="{py(v):.1f}" y2="{py(v):.1f}" stroke="#eee"/>')
            out.append(f'<text x="{x0 + pad_l - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{label}</text>')
            e += 1
        for j, f in enumerate(FOLLOWERS):
            out.append(f'<text x="{px(j):.1f}" y="{pad_t + ph + 16}" text-anchor="middle">{f:,}</text>')
        out.append(f'<text x="{x0 + pad_l + pw / 2}" y="{pad_t + ph + 34}" text-anchor="middle">followers at the end of the topic</text>')
        out.append(f'<text transform="translate({x0 + 14},{pad_t + ph / 2}) rotate(-90)" text-anchor="middle">p99 latency (median of runs)</text>')
        for side, dash in (("before", ' stroke-dasharray="5,4"'), ("after", "")):
            for eng, color in COLORS.items():
                pts = [(px(j), py(sides[side][(bench, eng, f)])) for j, f in enumerate(FOLLOWERS)
                       if sides[side].get((bench, eng, f), 0) > 0]
                if len(pts) < 2:
                    continue
                path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
                out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
                for x, y in pts:
                    out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>')
    lx = 40
    for eng, color in COLORS.items():
        out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{h + 22}" y2="{h + 22}" stroke="{color}" stroke-width="2"/>')
        out.append(f'<text x="{lx + 30}" y="{h + 26}">{eng}</text>')
        lx += 110
    out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{h + 22}" y2="{h + 22}" stroke="#333" stroke-width="2" stroke-dasharray="5,4"/>')
    out.append(f'<text x="{lx + 30}" y="{h + 26}">before (engine read per follower)</text>')
    lx += 250
    out.append(f'<line x1="{lx}" x2="{lx + 24}" y1="{h + 22}" y2="{h + 22}" stroke="#333" stroke-width="2"/>')
    out.append(f'<text x="{lx + 30}" y="{h + 26}">after (tail ring)</text>')
    out.append("</svg>")
    (d / "p99.svg").write_text("\n".join(out) + "\n")
    print(f"wrote {d / 'p99.svg'}")


if __name__ == "__main__":
    main()
