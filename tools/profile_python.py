#!/usr/bin/env python3
"""Where the Python server's CPU time per request goes, per workload (`--rust`: the Rust
server's, beside it): the server (one worker)
pinned to CPU 0 under oha on CPU 1, sampled by `perf record` in the middle of the run, every
sample put in one of a few parts by the library and symbol it is in, and each part given in
µs of server CPU per answered request (every answer 2xx, as in tools/ab.py).

    tools/profile_python.py path-uuid mixed query-many urlencoded-complex multipart-large

Needs `perf` and a release build (`make build`). Prints a markdown table.
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


def samples(data: str) -> dict[str, float]:
    """Share of samples per part."""
    out = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--sort", "dso,symbol", "--stdio", "-g", "none"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    shares: dict[str, float] = {}
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)", line)
        if m:
            part = part_of(m.group(2), m.group(3))
            shares[part] = shares.get(part, 0.0) + float(m.group(1)) / 100
    return shares


def profile(workload: dict, port: int, pid: int, seconds: float, out: Path) -> tuple[float, dict[str, float]]:
    data = str(out / f"{workload['name']}.perf")
    perf = ["perf", "record", "-q", "-F", "2999", "-p", str(pid), "-o", data, "--", "sleep", str(seconds - 2)]
    recorder = threading.Timer(1.0, lambda: subprocess.run(perf, capture_output=True, check=True))
    recorder.start()
    result = ab.run(workload, port, pid, seconds, 50)
    recorder.join()
    if result["failed"]:
        raise SystemExit(f"{workload['name']}: {result['failed']}")
    return result["cpu_us"], samples(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=6)
    parser.add_argument("--rust", action="store_true", help="profile the Rust workload server instead, for comparison")
    parser.add_argument("workloads", nargs="+")
    args = parser.parse_args()
    out = Path(tempfile.mkdtemp())
    subprocess.run([str(ab.ROOT / "target/release/spikard-rust-workloads"), "--export-table", str(out)], check=True)
    table = {w["name"]: w for w in json.loads((out / "table.json").read_text())}
    if args.rust:
        command = f"{ab.ROOT}/target/release/spikard-rust-workloads --threads 1 --port {{port}}"
    else:
        command = f"{ab.ROOT}/.venv/bin/python -m spikard workload_app:app --workers 1 --port {{port}}"
    proc, port = ab.start(command, str(ab.ROOT / "python"))
    names = [name for name, _, _ in PARTS]
    try:
        print("| workload | CPU µs/request | " + " | ".join(names) + " |")
        print("|---|---:|" + "---:|" * len(names))
        for name in args.workloads:
            cpu, shares = profile(table[name], port, proc.pid, args.duration, out)
            cells = " | ".join(f"{cpu * shares.get(part, 0.0):.1f}" for part in names)
            print(f"| {name} | {cpu:.1f} | {cells} |", flush=True)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
