#!/usr/bin/env bash
# Prints the README's replay tables: every allocator (torch, torch-expandable, online,
# guided) on the PyTorch snapshot, the Kineto trace and every DTR log in
# ../shared/traces/external (peak reserved and utilisation), then the DTR logs as 5 iterations
# (--repeat 5) and with seeded variation (--repeat 5 --dynamic 7).
# Usage: scripts/replay_table.sh [path/to/memplan]
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-./target/release/memplan}"
ext=../shared/traces/external
if [[ ! -d "$ext" ]]; then echo "SKIP: $ext not found"; exit 0; fi
table() {
    python3 -c '
import json, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
names = [r["allocator"] for r in rows[0]["results"]]
print("| trace | peak requested | " + " | ".join(f"{n} peak reserved (utilisation)" for n in names) + " | guided hits / misses |")
print("|---|--:|" + "--:|" * len(names) + "--:|")
for r in rows:
    parts = r["file"].split("/")
    name = {"memory.pickle": parts[-2] + " (PyTorch snapshot)",
            "df_index_resolver.json.gz": "HTA DDP rank 1 (Kineto)"}.get(parts[-1], "DTR " + parts[-1].split("-")[0])
    if r["repeat"] > 1:
        name += " x%d" % r["repeat"]
    if r["dynamic"] is not None:
        name += " dynamic %d" % r["dynamic"]
    cells = ["{:,} ({:.1f} %)".format(x["peak_reserved"], 100 * x["utilization"]) for x in r["results"]]
    plan = [x["plan"] for x in r["results"] if x.get("plan")]
    hm = "{:,} / {:,}".format(plan[0]["hits"], plan[0]["misses"]) if plan else "-"
    print("| {} | {:,} | ".format(name, r["results"][0]["peak_requested"]) + " | ".join(cells) + " | " + hm + " |")
'
}
traces=("$ext/pytorch_snapshots/decomfl_opt/memory.pickle"
        "$ext/kineto_profiler/hta/df_index_resolver.json.gz"
        "$ext"/dtr-simrd-logs/*.log)
for t in "${traces[@]}"; do "$bin" replay "$t" --json 2>/dev/null; done | table
echo
for t in "$ext"/dtr-simrd-logs/*.log; do "$bin" replay "$t" --repeat 5 --json 2>/dev/null; done | table
echo
for t in "$ext"/dtr-simrd-logs/*.log; do "$bin" replay "$t" --repeat 5 --dynamic 7 --json 2>/dev/null; done | table
