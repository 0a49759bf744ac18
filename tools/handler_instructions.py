#!/usr/bin/env python3
"""Counts the instructions of the database handlers' own Python code: what `workload_app.py`'s
`db`, `queries`, `updates` and `fortunes` run besides awaiting the database (drawing ids with
`random`, building the argument tuples, the answer's dicts, the fortunes page), on rows like
those the database returns, with no server, no event loop and no driver.

Each piece runs under valgrind's callgrind twice, `-n` and `2 * n` times; the difference over
`n` is its user-space instructions per call, start-up cancelled out. Comparing it with the
servers' totals (`tools/instructions.py`) tells the handler's own part of the Python server's
cost from the engine's.

    tools/handler_instructions.py            # every piece, -n 2000
    tools/handler_instructions.py queries -n 500

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
        "ids = [wl.random_id() for _ in range(wl.count('20'))]; args = [(id,) for id in ids]; "
        "numbers = wl.numbers_of(ids, rows20); "
        "answer = [{'id': id, 'randomNumber': n} for id, n in zip(ids, numbers, strict=True)]"
    ),
    "updates": (
        "ids = sorted(random.sample(range(1, 10_001), wl.count('20'))); "
        "args = [(id,) for id in ids]; wl.numbers_of(ids, rows20); rows = wl.updated_rows(ids); "
        "numbers = [row['randomNumber'] for row in rows]"
    ),
    "fortunes": "page = wl.fortunes_page(list(fortunes)); answer = wl.html_response(page)",
    "randint": "random.randint(1, 10_000)",
}

SETUP = """
import random, sys
sys.path.insert(0, {python_dir!r})
import workload_app as wl
number = 4242
rows20 = [(random.randint(1, 10_000),) for _ in range(20)]
fortunes = {fortunes!r}
def piece():
    {body}
for _ in range(int(sys.argv[1])):
    piece()
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pieces", nargs="*", metavar="piece", help=f"of {', '.join(PIECES)} (all)")
    parser.add_argument("-n", type=int, default=2000, help="calls per run (the second run makes twice as many)")
    args = parser.parse_args()
    unknown = set(args.pieces) - set(PIECES)
    if unknown:
        parser.error(f"unknown pieces: {', '.join(sorted(unknown))}")
    print(f"{'piece':<10} {'instr/call':>11}")
    for name in args.pieces or list(PIECES):
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write(SETUP.format(python_dir=PYTHON_DIR, fortunes=fortune_rows(), body=PIECES[name]))
        try:
            once, twice = instructions(f.name, args.n), instructions(f.name, 2 * args.n)
        finally:
            os.unlink(f.name)
        print(f"{name:<10} {(twice - once) / args.n:>11,.0f}")


if __name__ == "__main__":
    main()
