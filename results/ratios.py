#!/usr/bin/env python3
"""Reads a `go test -bench` output (several -count runs) and prints the
markdown tables of results/bench/README.md: the median events/s of each
benchmark and the ratios between layers (store / raw engine, server /
store) and for group commit (16 appenders / 1), the process CPU per event
of the benchmarks that report it (unit cpu-us/event or cpu-µs/event: client
and server together, one process), and the store's targets of issue 7.

    results/ratios.py results/bench/bench.txt
"""
import re
import statistics
import sys
from collections import defaultdict

runs = defaultdict(list)
extra = defaultdict(lambda: defaultdict(list))
for line in open(sys.argv[1]):
    if not line.startswith("Benchmark"):
        continue
    name = re.sub(r"-\d+$", "", line.split()[0])
    fields = line.split()
    for i in range(2, len(fields) - 1):
        unit = fields[i + 1]
        try:
            v = float(fields[i])
        except ValueError:
            continue
        if unit == "events/s":
            runs[name].append(v)
        elif unit in ("appends/commit", "allocs/op", "B/op", "answers/msg"):
            extra[name][unit].append(v)
        elif unit in ("cpu-us/event", "cpu-µs/event"):
            extra[name]["cpu-us/event"].append(v)

med = {k: statistics.median(v) for k, v in runs.items()}


def m(name):
    return med.get(name)


def fmt(v):
    if v is None:
        return "–"
    if v >= 1e6:
        return f"{v/1e6:.2f}M"
    if v >= 1e3:
        return f"{v/1e3:.1f}k"
    return f"{v:.0f}"


def ratio(a, b):
    return "–" if a is None or b is None or b == 0 else f"{a/b:.2f}"


engines = ["leveldb", "pebble", "bolt"]
print("### Append: store vs raw engine (one appender), events/s, median of runs\n")
print("| engine | sync | size | batch | raw engine | store | store/raw |")
print("|---|---|---|---|--:|--:|--:|")
for e in engines:
    for sync in ["true", "false"]:
        for size in ["100B", "1KiB"]:
            for batch in [1, 16, 128]:
                raw = m(f"BenchmarkRawWrite/engine={e}/sync={sync}/size={size}/batch={batch}")
                st = m(f"BenchmarkAppend/engine={e}/sync={sync}/size={size}/batch={batch}/appenders=1")
                print(f"| {e} | {sync} | {size} | {batch} | {fmt(raw)} | {fmt(st)} | {ratio(st, raw)} |")

print("\n### Group commit: 16 appenders vs 1, store, events/s\n")
print("| engine | sync | size | batch | 1 appender | 16 appenders | ×  | appends/commit (16) |")
print("|---|---|---|---|--:|--:|--:|--:|")
for e in engines:
    for sync in ["true", "false"]:
        for size in ["100B", "1KiB"]:
            for batch in [1, 16, 128]:
                one = m(f"BenchmarkAppend/engine={e}/sync={sync}/size={size}/batch={batch}/appenders=1")
                name16 = f"BenchmarkAppend/engine={e}/sync={sync}/size={size}/batch={batch}/appenders=16"
                sixteen = m(name16)
                apc = extra[name16]["appends/commit"]
                apc = f"{statistics.median(apc):.1f}" if apc else "–"
                print(f"| {e} | {sync} | {size} | {batch} | {fmt(one)} | {fmt(sixteen)} | {ratio(sixteen, one)} | {apc} |")

print("\n### Reads, events/s (100 B events; one op = one event)\n")
print("| engine | raw scan | store Read | Read/raw | Consume over gRPC | Consume/Read | time seeks/s | allocs/event (Read) |")
print("|---|--:|--:|--:|--:|--:|--:|--:|")
for e in engines:
    raw = m(f"BenchmarkRawScan/engine={e}/size=100B/page=1000")
    rd_name = f"BenchmarkRead/engine={e}/size=100B/page=1000"
    rd = m(rd_name)
    cons = m(f"BenchmarkConsume/engine={e}/size=100B")
    seek = m(f"BenchmarkSeek/engine={e}")
    allocs = extra[rd_name]["allocs/op"]
    allocs = f"{statistics.median(allocs):.3f}" if allocs else "–"
    print(f"| {e} | {fmt(raw)} | {fmt(rd)} | {ratio(rd, raw)} | {fmt(cons)} | {ratio(cons, rd)} | {fmt(seek)} | {allocs} |")
print()
print("| engine | Consume 1 KiB events/s | MB/s |")
print("|---|--:|--:|")
for e in engines:
    c = m(f"BenchmarkConsume/engine={e}/size=1KiB")
    print(f"| {e} | {fmt(c)} | {'–' if c is None else f'{c*1024/1e6:.0f}'} |")

print("\n### Produce through the loopback gRPC server vs the store, events/s\n")
print("| engine | sync | size | batch | producers | store Append | unary Produce | ProduceStream (stream per producer) | ProduceStream (one shared stream) | unary/store | stream/store |")
print("|---|---|---|---|---|--:|--:|--:|--:|--:|--:|")
cases = [(16, 1, "100B"), (1, 1, "100B"), (1, 128, "100B"), (1, 1000, "100B"), (16, 1, "1KiB"), (1, 1000, "1KiB")]
for e in engines:
    for sync in ["true", "false"]:
        for p, b, size in cases:
            st = m(f"BenchmarkAppend/engine={e}/sync={sync}/size={size}/batch={b}/appenders={p}")
            un = m(f"BenchmarkProduce/engine={e}/sync={sync}/size={size}/batch={b}/producers={p}")
            sp = m(f"BenchmarkProduceStream/engine={e}/sync={sync}/size={size}/batch={b}/producers={p}/streams=per-producer")
            s1 = m(f"BenchmarkProduceStream/engine={e}/sync={sync}/size={size}/batch={b}/producers={p}/streams=1")
            print(f"| {e} | {sync} | {size} | {b} | {p} | {fmt(st)} | {fmt(un)} | {fmt(sp)} | {fmt(s1)} | {ratio(un, st)} | {ratio(sp, st)} |")

cpu = sorted(k for k in extra if extra[k]["cpu-us/event"])
if cpu:
    print("\n### CPU per event, process user + system time (client and server share the process)\n")
    print("| benchmark | events/s | cpu µs/event | appends/commit |")
    print("|---|--:|--:|--:|")
    for name in cpu:
        c = statistics.median(extra[name]["cpu-us/event"])
        apc = extra[name]["appends/commit"]
        apc = f"{statistics.median(apc):.1f}" if apc else "–"
        print(f"| {name.removeprefix('Benchmark')} | {fmt(m(name))} | {c:.1f} | {apc} |")


def verdict(ok):
    return "–" if ok is None else ("met" if ok else "**missed**")


print("\n### Store targets (issue 7): one-event appends, 100 B, sync\n")
print("| engine | appends/commit, 16 appenders (≥ 12) | 16 appenders / 1 (≥ 12×) | 1 appender / raw synced writes (≥ 0.9×) |")
print("|---|--:|--:|--:|")
for e in engines:
    base = f"BenchmarkAppend/engine={e}/sync=true/size=100B/batch=1/appenders="
    one, sixteen = m(base + "1"), m(base + "16")
    raw = m(f"BenchmarkRawWrite/engine={e}/sync=true/size=100B/batch=1")
    apc = extra[base + "16"]["appends/commit"]
    apc = statistics.median(apc) if apc else None
    x16 = sixteen / one if one and sixteen else None
    xraw = one / raw if one and raw else None
    cells = [
        "–" if apc is None else f"{apc:.1f} {verdict(apc >= 12)}",
        "–" if x16 is None else f"{x16:.1f}× {verdict(x16 >= 12)}",
        "–" if xraw is None else f"{xraw:.2f}× {verdict(xraw >= 0.9)}",
    ]
    print(f"| {e} | " + " | ".join(cells) + " |")
