#!/bin/sh
# Bytes moved per iteration by the optimal-future (Belady) and LRU eviction policies on the
# LLaMA-7B-shaped model, host big enough for all chunks, at several GPU budgets.
# Usage: scripts/chunks_table.sh [path/to/memplan]   (default target/release/memplan)
set -eu
B=${1:-target/release/memplan}
M=cli/models/llama-7b.csv
echo "| GPU budget | Belady moved (GiB, 2nd iteration) | LRU moved (GiB, 2nd iteration) | Belady / LRU | prefetch coverage, both iterations (Belady / LRU) |"
echo "|---|---|---|---|---|"
for g in 4 6 8 12 16 24 32 48 64 80; do
  b=$("$B" chunks "$M" --gpu-bytes "${g}GiB" --host-bytes 128GiB --policy belady --json)
  l=$("$B" chunks "$M" --gpu-bytes "${g}GiB" --host-bytes 128GiB --policy lru --json)
  python3 - "$g" "$b" "$l" <<'PY'
import json, sys
g, b, l = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
G = 2**30
bm, lm = b["last_iteration_moved"], l["last_iteration_moved"]
ratio = f"{bm / lm:.2f}" if lm else "-"
print(f"| {g} GiB | {bm / G:.2f} | {lm / G:.2f} | {ratio} | "
      f"{100 * b['prefetch_coverage']:.1f}% / {100 * l['prefetch_coverage']:.1f}% |")
PY
done
