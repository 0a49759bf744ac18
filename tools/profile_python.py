#!/usr/bin/env python3
"""Where the Python server's CPU time per request goes, per workload (`--rust`: the Rust
server's, beside it): the server (one worker)
pinned to CPU 0 under oha on CPU 1, sampled by `perf record` in the middle of the run, every
sample put in one of a few parts by the library and symbol it is in, and each part given in
µs of server CPU per answered request (every answer 2xx, as in tools/ab.py).

    tools/profile_python.py path-uuid mixed query-many urlencoded-complex multipart-large

With `--compare`, each workload is profiled on both servers in turn and the symbols whose
cost differs most are listed, µs per request in the Python server, in the Rust server, and
the difference (what the Python path adds, symbol by symbol):

    tools/profile_python.py --compare query-many

With `--against OTHER`, each workload is compared with OTHER on the Python server instead
(what `async def` adds to the same work, say):

    tools/profile_python.py --compare --against path-int path-int-async

Needs `perf` and a release build (`make build`). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ab  # noqa: E402

# (part, library pattern, symbol pattern), first match wins.
PARTS = [
    ("kernel: sockets, wake-ups", r"kernel", r""),
    ("into Python: arguments and bodies", r"_spikard", r"value_to_py|json_to_py|PySeed|uuid_to_py|upload_to_py|::args"),
    ("answer: walk and JSON encoding", r"_spikard", r"PyJson|serde_json::ser|zmij|ryu|itoa|answer::|body_response"),
    ("engine: HTTP, routing, plan, body", r"_spikard|spikard-rust-workloads", r""),
    ("Python: the handler, objects, calls", r"libpython|python3", r""),
    ("msgspec", r"msgspec|_core\.cpython", r""),
    ("libc: allocation and copies", r"libc", r""),
    ("the handler's own libraries", r"", r""),
]


def part_of(dso: str, symbol: str) -> str:
    for name, dso_pattern, symbol_pattern in PARTS:
        if re.search(dso_pattern, dso) and re.search(symbol_pattern, symbol):
            return name
    return PARTS[-1][0]


def symbol_shares(data: str) -> list[tuple[float, str, str]]:
    """(share of samples, library, symbol) for every symbol perf saw."""
    out = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol", "--stdio", "-g", "none"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    shares = []
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*?)(\s+-\s+-)?\s*$", line)
        if m:
            shares.append((float(m.group(1)) / 100, m.group(2), m.group(3)))
    return shares


def samples(data: str) -> dict[str, float]:
    """Share of samples per part."""
    shares: dict[str, float] = {}
    for share, dso, symbol in symbol_shares(data):
        part = part_of(dso, symbol)
        shares[part] = shares.get(part, 0.0) + share
    return shares


def symbol_costs(data: str, cpu_us: float) -> dict[str, float]:
    """µs per request per symbol (the library left out, so that the engine's symbols in the
    extension and in the Rust server's binary compare as one)."""
    costs: dict[str, float] = {}
    for share, _, symbol in symbol_shares(data):
        costs[symbol] = costs.get(symbol, 0.0) + share * cpu_us
    return costs


def record(workload: dict, port: int, pid: int, seconds: float, out: Path, tag: str = "") -> tuple[float, str]:
    """Runs the workload against the server, `perf record`ing it in the middle: its CPU µs per
    request and the perf data's path."""
    data = str(out / f"{workload['name']}{tag}.perf")
    perf = ["perf", "record", "-q", "-F", "2999", "-p", str(pid), "-o", data, "--", "sleep", str(seconds - 2)]
    recorder = threading.Timer(1.0, lambda: subprocess.run(perf, capture_output=True, check=True))
    recorder.start()
    result = ab.run(workload, port, pid, seconds, 50)
    recorder.join()
    if result["failed"]:
        raise SystemExit(f"{workload['name']}: {result['failed']}")
    return result["cpu_us"], data


PYTHON = f"{ab.ROOT}/.venv/bin/python -m spikard workload_app:app --workers 1 --port {{port}}"
RUST = f"{ab.ROOT}/target/release/spikard-rust-workloads --threads 1 --port {{port}}"


def serve(command: str) -> tuple[subprocess.Popen[bytes], int]:
    return ab.start(command, str(ab.ROOT / "python"))


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def parts_table(workloads: list[str], table: dict, command: str, seconds: float, out: Path) -> None:
    proc, port = serve(command)
    names = [name for name, _, _ in PARTS]
    try:
        print("| workload | CPU µs/request | " + " | ".join(names) + " |")
        print("|---|---:|" + "---:|" * len(names))
        for name in workloads:
            cpu, data = record(table[name], port, proc.pid, seconds, out)
            shares = samples(data)
            cells = " | ".join(f"{cpu * shares.get(part, 0.0):.1f}" for part in names)
            print(f"| {name} | {cpu:.1f} | {cells} |", flush=True)
    finally:
        stop(proc)


def compare(workloads: list[str], table: dict, seconds: float, out: Path, top: int, against: str | None) -> None:
    """Each workload on the Python server against the same workload on the Rust server, or
    (``against``) against another workload on the Python server."""
    sides = [("python", PYTHON, None), ("rust", RUST, None)]
    if against:
        sides = [("python", PYTHON, None), (against, PYTHON, against)]
    runs: dict[str, dict[str, tuple[float, dict[str, float]]]] = {}
    for label, command, other in sides:
        proc, port = serve(command)
        try:
            for name in workloads:
                cpu, data = record(table[other or name], port, proc.pid, seconds, out, f"-{label}")
                runs.setdefault(name, {})[label] = (cpu, symbol_costs(data, cpu))
        finally:
            stop(proc)
    a_label, b_label = sides[0][0], sides[1][0]
    for name in workloads:
        (a_cpu, a_costs), (b_cpu, b_costs) = runs[name][a_label], runs[name][b_label]
        print(f"\n{name}: {a_label} {a_cpu:.1f} µs, {b_label} {b_cpu:.1f} µs per request\n")
        print(f"| symbol | {a_label} µs | {b_label} µs | {a_label} − {b_label} |")
        print("|---|---:|---:|---:|")
        symbols = sorted(
            set(a_costs) | set(b_costs), key=lambda k: a_costs.get(k, 0.0) - b_costs.get(k, 0.0), reverse=True
        )
        for symbol in symbols[:top]:
            a, b = a_costs.get(symbol, 0.0), b_costs.get(symbol, 0.0)
            print(f"| `{symbol[:100]}` | {a:.3f} | {b:.3f} | {a - b:+.3f} |")
        rest = sum(a_costs.get(k, 0.0) - b_costs.get(k, 0.0) for k in symbols[top:])
        print(f"| every other symbol | | | {rest:+.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=6)
    parser.add_argument("--rust", action="store_true", help="profile the Rust workload server instead, for comparison")
    parser.add_argument("--compare", action="store_true", help="both servers, symbol by symbol")
    parser.add_argument("--top", type=int, default=30, help="symbols listed by --compare")
    parser.add_argument(
        "--against",
        metavar="WORKLOAD",
        help="with --compare: against this workload on the Python server instead of the Rust server",
    )
    parser.add_argument("workloads", nargs="+")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp())
    subprocess.run([str(ab.ROOT / "target/release/spikard-rust-workloads"), "--export-table", str(out)], check=True)
    table = {w["name"]: w for w in json.loads((out / "table.json").read_text())}
    unknown = [name for name in [*args.workloads, *([args.against] if args.against else [])] if name not in table]
    if unknown:
        raise SystemExit(f"unknown workloads: {', '.join(unknown)}")
    if args.compare:
        compare(args.workloads, table, args.duration, out, args.top, args.against)
    else:
        parts_table(args.workloads, table, RUST if args.rust else PYTHON, args.duration, out)
    print(f"\nperf data: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
