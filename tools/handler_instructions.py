#!/usr/bin/env python3
"""Counts the instructions of the database handlers' own Python code: what `workload_app.py`'s
`db`, `queries`, `updates` and `fortunes` run besides awaiting the database (drawing ids with
`random`, building the argument tuples, the answer's dicts, the fortunes page, and apart the
page's three parts: escaping, sorting, the rows' cells), on rows like those the database
returns, with no server, no event loop and no driver.

Each piece runs under valgrind's callgrind twice, `-n` and `2 * n` times; the difference over
`n` is its user-space instructions per call, start-up cancelled out. Comparing it with the
servers' totals (`tools/instructions.py`) tells the handler's own part of the Python server's
cost from the engine's.

    tools/handler_instructions.py            # every piece, -n 2000
    tools/handler_instructions.py queries -n 500
    tools/handler_instructions.py fortunes-escape fortunes-sort fortunes-cells

With `--time`, each piece's CPU time per call instead (the best of five runs of `-n` calls,
after one run to warm up, the process pinned to CPU 0 with `taskset` as the harness pins the
servers), to set beside the servers' CPU time per request:

    tools/handler_instructions.py --time -n 20000

Needs valgrind (`apt-get install valgrind`); runs with the interpreter that runs it.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.join(os.path.dirname(HERE), "python")
SCHEMA = os.path.join(HERE, "db", "schema.sql")

#: What each workload's handler computes itself, as the handler writes it.
PIECES = {
    "db": "id = wl.random_id(); answer = {'id': id, 'randomNumber': number}",
    "queries": (
        "ids = wl.random_ids(wl.count('20')); args = [(id,) for id in ids]; "
        "numbers = wl.numbers_of(ids, rows20); "
        "answer = [{'id': id, 'randomNumber': n} for id, n in zip(ids, numbers, strict=True)]"
    ),
    "updates": (
        "ids = sorted(random.sample(wl.WORLD_IDS, wl.count('20'))); "
        "args = [(id,) for id in ids]; wl.numbers_of(ids, rows20); numbers = wl.random_ids(len(ids)); "
        "rows = wl.updated_rows(ids, numbers)"
    ),
    "fortunes": "page = wl.fortunes_page(list(fortunes)); answer = wl.html_response(page)",
    # fortunes_page's three parts on its 13 rows (the 12 fortunes and the one it adds).
    "fortunes-escape": "escaped = [html.escape(message) for _, message in fortunes13]",
    "fortunes-sort": "rows = list(fortunes13); rows.sort(key=itemgetter(1))",
    "fortunes-cells": "cells = ''.join(f'<tr><td>{id}</td><td>{message}</td></tr>' for id, message in fortunes13)",
    "randint": "random.randint(1, 10_000)",
}

SETUP = """
import html, random, sys
from operator import itemgetter
sys.path.insert(0, {python_dir!r})
import workload_app as wl
number = 4242
rows20 = [(random.randint(1, 10_000),) for _ in range(20)]
fortunes = {fortunes!r}
fortunes13 = fortunes + [(0, wl.ADDED_FORTUNE)]
def piece():
    {body}
def run(n):
    for _ in range(n):
        piece()
n = int(sys.argv[1])
if len(sys.argv) > 2:
    import time
    def took():
        start = time.process_time_ns()
        run(n)
        return time.process_time_ns() - start
    run(n)
    print(min(took() for _ in range(5)) / n / 1000)
else:
    run(n)
"""


def fortune_rows() -> list[tuple[int, str]]:
    """The `fortune` table's rows, as the schema inserts them."""
    with open(SCHEMA, encoding="utf-8") as f:
        rows = re.findall(r"^\s*\((\d+), '((?:[^']|'')*)'\)", f.read(), re.MULTILINE)
    return [(int(id), message.replace("''", "'")) for id, message in rows]


def instructions(script: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, script, str(n)],
            capture_output=True,
            text=True,
            check=True,
        )
        found = re.search(r"Collected : (\d+)", run.stderr)
        if found is None:
            raise SystemExit(f"no instruction count from callgrind:\n{run.stderr}")
        return int(found.group(1))


def cpu_us(script: str, n: int) -> float:
    run = subprocess.run(
        ["taskset", "-c", "0", sys.executable, script, str(n), "time"], capture_output=True, text=True, check=True
    )
    return float(run.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pieces", nargs="*", metavar="piece", help=f"of {', '.join(PIECES)} (all)")
    parser.add_argument("-n", type=int, default=2000, help="calls per run (the second run makes twice as many)")
    parser.add_argument("--time", action="store_true", help="CPU µs per call on CPU 0 rather than instructions")
    args = parser.parse_args()
    unknown = set(args.pieces) - set(PIECES)
    if unknown:
        parser.error(f"unknown pieces: {', '.join(sorted(unknown))}")
    print(f"{'piece':<16} {'µs/call' if args.time else 'instr/call':>11}")
    for name in args.pieces or list(PIECES):
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write(SETUP.format(python_dir=PYTHON_DIR, fortunes=fortune_rows(), body=PIECES[name]))
        try:
            if args.time:
                figure = f"{cpu_us(f.name, args.n):>11.2f}"
            else:
                once, twice = instructions(f.name, args.n), instructions(f.name, 2 * args.n)
                figure = f"{(twice - once) / args.n:>11,.0f}"
        finally:
            os.unlink(f.name)
        print(f"{name:<16} {figure}")


if __name__ == "__main__":
    main()
