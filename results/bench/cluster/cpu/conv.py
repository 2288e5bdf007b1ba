#!/usr/bin/env python3
# conv2.py NAME OUTPREFIX: benchmark lines per variant from json/NAME-V-R/*.json (cluster3 output),
# with each round's ratio 3 nodes / 1 node.
import sys, json, glob, os, collections
name, prefix = sys.argv[1], sys.argv[2]
out = collections.defaultdict(list)
for d in sorted(glob.glob(f"/tmp/cpuw/json/{name}-*-*")):
    v, r = os.path.basename(d)[len(name)+1:].rsplit('-', 1)
    got = {}
    for nodes, sysname in ((1, 'goethe-pebble'), (3, 'cluster3-goethe-pebble')):
        f = f"{d}/b-100B.{sysname}.fsync.r1.json"
        if not os.path.exists(f):
            continue
        j = json.load(open(f))
        p = j['result']['produce']
        got[nodes] = p['events_per_s']
        out[v].append(f"BenchmarkE2EB/nodes={nodes} 1 {p['events_per_s']:.0f} events/s {p['call_latency']['p50_us']} p50-µs "
                      f"{p['call_latency']['p99_us']} p99-µs {j['server_cpu']['us_per_event']:.4f} server-cpu-µs/event")
    if len(got) == 2:
        out[v].append(f"BenchmarkE2EB/ratio 1 {got[3]/got[1]:.4f} x-of-1-node")
for v, ls in out.items():
    open(f"{prefix}-{v}.txt", 'w').write("\n".join(ls) + "\n")
