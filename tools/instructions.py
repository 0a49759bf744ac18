#!/usr/bin/env python3
"""Counts the user-space instructions a server runs per answered request, under valgrind's
callgrind: repeatable to a fraction of a percent where CPU time on a shared machine is not, so
it can tell apart changes of a few hundred nanoseconds. Kernel time (sockets, wake-ups) is not
counted. Each server starts with instrumentation off, takes a warm-up, then counts over `-n`
requests (every answer 2xx, or it fails).

    tools/instructions.py --a 'OLD/bin/python -m spikard workload_app:app --workers 1 --port {port}' \\
                          --a-cwd OLD_TREE/python \\
                          --b "$PWD/.venv/bin/python -m spikard workload_app:app --workers 1 --port {port}" \\
                          --b-cwd python  urlencoded-complex query-many

`--keep DIR` leaves callgrind's files in DIR/<workload>-a/ and -b/, for
`callgrind_annotate --inclusive=yes DIR/query-many-b/cg.*`.

Needs valgrind (`apt-get install valgrind`).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import ab


def oha(workload: dict, port: int, requests: int) -> None:
    line = ab.oha_line(workload, port, ["-n", str(requests), "-c", "8"])
    report = json.loads(subprocess.run(line, check=True, capture_output=True).stdout)
    codes = report["statusCodeDistribution"]
    if set(codes) != {"200"} or sum(codes.values()) != requests:
        raise SystemExit(f"{workload['name']}: {codes} {report['errorDistribution']}")


def count(command: str, cwd: str, workload: dict, requests: int, keep: Path | None = None) -> float:
    """Instructions per request of one server on one workload (its callgrind files left in
    `keep` when given, for `callgrind_annotate`)."""
    out = keep or Path(tempfile.mkdtemp())
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("cg.*"):
        old.unlink()
    port = ab.free_port()
    line = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}/cg.%p"]
    line += shlex.split(command.format(port=port))
    proc = subprocess.Popen(line, cwd=cwd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                oha(workload, port, 1)
                break
            except (subprocess.CalledProcessError, SystemExit):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"{command} did not start under valgrind") from None
                time.sleep(0.5)
        oha(workload, port, max(requests // 5, 50))
        subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
        oha(workload, port, requests)
        subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    total = 0
    for dump in out.glob("cg.*"):
        for text in dump.read_text(errors="replace").splitlines():
            if text.startswith("totals:"):
                total += int(text.split()[1])
                break
    return total / requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ab.server_arguments(parser)
    parser.add_argument("-n", type=int, default=2000, help="requests counted per server and workload")
    parser.add_argument("--keep", type=Path, help="leave callgrind's files in KEEP/<workload>-{a,b}/")
    parser.add_argument("workloads", nargs="+")
    args = parser.parse_args()
    table = ab.workload_table()
    print(f"{'workload':<20} {'A instr/req':>12} {'B instr/req':>12} {'B/A':>6}")
    for name in args.workloads:
        keep = {side: args.keep / f"{name}-{side}" if args.keep else None for side in "ab"}
        a = count(args.a, args.a_cwd, table[name], args.n, keep["a"])
        b = count(args.b, args.b_cwd, table[name], args.n, keep["b"])
        print(f"{name:<20} {a:>12,.0f} {b:>12,.0f} {b / a:>6.3f}", flush=True)


if __name__ == "__main__":
    main()
