#!/usr/bin/env python3
"""Runs `memplan replay` and `memplan analyze --json` on every PyTorch memory file under
../shared/traces/external/{pytorch_snapshots,kineto_profiler} and prints the Markdown table the
README shows ("Every PyTorch memory file in ../shared").

Usage: scripts/shared-files-table.py [MEMPLAN_BINARY]   (default: target/release/memplan)
"""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "traces", "external")
FOLDERS = ["pytorch_snapshots", "kineto_profiler"]
NOT_MEMORY_FILES = {"LICENSE", "SOURCES.md", "README.md"}


def gib(v):
    return "-" if v is None else f"{v / 2**30:.3f}"


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "release", "memplan")
    files = []
    for folder in FOLDERS:
        for base, dirs, names in os.walk(os.path.join(SHARED, folder)):
            dirs.sort()
            files += [os.path.join(base, n) for n in sorted(names) if n not in NOT_MEMORY_FILES]
    if not files:
        sys.exit(f"no files under {SHARED}: is ../shared there?")
    print("| file | kind | device | events | pre-existing blocks | peak requested GiB "
          "| PyTorch reserved GiB: recorded / torch model | expandable | memplan | memplan-plan "
          "| replay exit |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for path in files:
        rel = os.path.relpath(path, SHARED)
        replay = subprocess.run([binary, "replay", path, "--allocator", "torch"],
                                capture_output=True, text=True)
        analyze = subprocess.run([binary, "analyze", path, "--json"], capture_output=True, text=True)
        if analyze.returncode != 0:
            why = (analyze.stderr.strip().splitlines() or ["?"])[-1]
            why = why.split(": ", 1)[-1][:110].replace("|", "/")
            print(f"| `{rel}` | exit {analyze.returncode}: {why} | | | | | | | | | {replay.returncode} |")
            continue
        r = json.loads(analyze.stdout)["reports"][0]
        if r["allocations"] == 0:
            f = r["fragmentation_at_end"] or {}
            print(f"| `{rel}` | {r['kind']} | {r['device']} | state only "
                  f"({f.get('blocks', 0)} active blocks, {gib(f.get('reserved'))} GiB reserved) "
                  f"| - | - | - | - | - | - | {replay.returncode} |")
            continue
        rows = {w["allocator"]: w["peak_reserved"] for w in r["what_if"]}
        recorded = r.get("recorded_peak_reserved")
        torch = rows.get("torch")
        if recorded and torch:
            torch_cell = f"{gib(recorded)} / {gib(torch)} ({torch / recorded:.3f}×)"
        else:
            torch_cell = f"- / {gib(torch)}"
        device = "-" if r["device"] is None else r["device"]
        print(f"| `{rel}` | {r['kind']} | {device} | {r['events']} | {r['pre_existing_blocks']} "
              f"| {gib(r['peak_requested'])} | {torch_cell} | {gib(rows.get('torch-expandable'))} "
              f"| {gib(rows.get('online'))} | {gib(rows.get('guided'))} | {replay.returncode} |")


if __name__ == "__main__":
    main()
