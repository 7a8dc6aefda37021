#!/usr/bin/env python3
"""Independently check a memplan solution against its problem (Python stdlib only).

Usage: verify_plan.py PROBLEM.csv SOLUTION.csv [--capacity BYTES] [--alignment BYTES]

PROBLEM.csv has a header naming id,lower,upper,size (any order, extra columns ignored);
SOLUTION.csv also names offset (as written by `memplan plan --out`). Lines starting with '#'
are comments in both. Lifetimes are half-open [lower, upper).

Checks that every problem buffer appears exactly once in the solution with the same
lower/upper/size, that offsets are non-negative integers (multiples of --alignment when
given), that every offset + size is within --capacity when given, and that no two buffers
whose lifetimes intersect share a byte. The overlap check is a sweep over time that keeps the
live buffers sorted by offset, so it is O(n log n) plus list shifts: 28k buffers take well
under a second.

Prints "OK n=N peak=P" and exits 0, or prints the first violation and exits 1 (2 for usage
or unreadable files).
"""

import argparse
import bisect
import csv
import sys


class Violation(Exception):
    """The solution breaks a rule; the message says which and where."""


def read_rows(path, required):
    """Returns [(line, {column: value})] for the data rows of a CSV file.

    Raises Violation when the header lacks a required column or a row is malformed.
    """
    with open(path, newline="", encoding="utf-8") as f:
        lines = [(i + 1, text) for i, text in enumerate(f) if not text.startswith("#")]
    # Keep physical line numbers: feed csv one line at a time (no quoted newlines expected).
    rows = []
    header = None
    for line, text in lines:
        if not text.strip():
            continue
        fields = [x.strip() for x in next(csv.reader([text]))]
        if header is None:
            header = fields
            missing = [c for c in required if c not in header]
            if missing:
                raise Violation(f"{path}:{line}: header lacks column(s) {', '.join(missing)}")
            continue
        if len(fields) != len(header):
            raise Violation(
                f"{path}:{line}: expected {len(header)} fields, found {len(fields)}"
            )
        rows.append((line, dict(zip(header, fields))))
    if header is None:
        raise Violation(f"{path}: empty file")
    return rows


def integer(path, line, row, column):
    """Parses a non-negative integer field."""
    text = row[column]
    if not (text.isascii() and text.isdigit()):
        raise Violation(f"{path}:{line}: {column} is not a non-negative integer: {text!r}")
    return int(text)


def check(problem_path, solution_path, capacity=None, alignment=None):
    """Returns (n, peak) for a valid solution; raises Violation otherwise."""
    problem = {}
    for line, row in read_rows(problem_path, ["id", "lower", "upper", "size"]):
        key = row["id"]
        if key in problem:
            raise Violation(f"{problem_path}:{line}: duplicate id {key!r}")
        problem[key] = tuple(
            integer(problem_path, line, row, c) for c in ("lower", "upper", "size")
        )

    placed = []  # (lower, upper, size, offset, id)
    seen = set()
    for line, row in read_rows(solution_path, ["id", "lower", "upper", "size", "offset"]):
        key = row["id"]
        if key not in problem:
            raise Violation(f"{solution_path}:{line}: id {key!r} is not in the problem")
        if key in seen:
            raise Violation(f"{solution_path}:{line}: id {key!r} appears twice")
        seen.add(key)
        lower, upper, size, offset = (
            integer(solution_path, line, row, c) for c in ("lower", "upper", "size", "offset")
        )
        if (lower, upper, size) != problem[key]:
            raise Violation(
                f"{solution_path}:{line}: buffer {key!r} has lower,upper,size "
                f"{lower},{upper},{size} but the problem says {','.join(map(str, problem[key]))}"
            )
        if alignment and offset % alignment:
            raise Violation(
                f"{solution_path}:{line}: buffer {key!r} offset {offset} "
                f"is not a multiple of {alignment}"
            )
        if capacity is not None and offset + size > capacity:
            raise Violation(
                f"{solution_path}:{line}: buffer {key!r} ends at {offset + size}, "
                f"beyond the capacity {capacity}"
            )
        placed.append((lower, upper, size, offset, key))
    missing = [k for k in problem if k not in seen]
    if missing:
        raise Violation(
            f"{solution_path}: {len(missing)} problem buffer(s) missing, e.g. {missing[0]!r}"
        )

    # Sweep over time; at equal times ends come before starts (half-open lifetimes). Live
    # buffers never overlap each other, so a new buffer need only be checked against its
    # neighbours in offset order.
    events = []
    for i, (lower, upper, _, _, _) in enumerate(placed):
        events.append((lower, 1, i))
        events.append((upper, 0, i))
    events.sort()
    live = []  # sorted (offset, index)
    for _, kind, i in events:
        lower, upper, size, offset, key = placed[i]
        if kind == 0:
            pos = bisect.bisect_left(live, (offset, i))
            del live[pos]
            continue
        pos = bisect.bisect_left(live, (offset, i))
        if pos > 0:
            o, j = live[pos - 1]
            if o + placed[j][2] > offset:
                raise Violation(overlap(placed[j], placed[i]))
        if pos < len(live):
            o, j = live[pos]
            if o < offset + size:
                raise Violation(overlap(placed[i], placed[j]))
        live.insert(pos, (offset, i))
    peak = max((offset + size for _, _, size, offset, _ in placed), default=0)
    return len(placed), peak


def overlap(a, b):
    """Describes two overlapping placements."""

    def describe(p):
        lower, upper, size, offset, key = p
        return f"{key!r} (time [{lower}, {upper}), bytes [{offset}, {offset + size}))"

    return f"overlap: {describe(a)} and {describe(b)} are alive together and share bytes"


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("problem", help="problem CSV: id,lower,upper,size")
    parser.add_argument("solution", help="solution CSV: id,lower,upper,size,offset")
    parser.add_argument("--capacity", type=int, help="bytes every offset + size must fit in")
    parser.add_argument("--alignment", type=int, help="offsets must be multiples of this")
    args = parser.parse_args(argv)
    try:
        n, peak = check(args.problem, args.solution, args.capacity, args.alignment)
    except Violation as e:
        print(f"FAIL {e}")
        return 1
    except (OSError, UnicodeDecodeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"OK n={n} peak={peak}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
