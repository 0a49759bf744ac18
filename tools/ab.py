#!/usr/bin/env python3
"""A/B two server commands on the same workloads, the way this machine can measure them: each
server pinned to CPU 0 (one worker), oha pinned to CPU 1, runs alternating A B A B, every
answer 2xx or the run is FAILED. Prints requests/s and the server's CPU time per request
(user + system of its whole process group over the run, / answered requests) with the
median of the runs, and B's ratio to A. `--split` adds each server's user and system time per
request and how often its threads slept per request (voluntary context switches).

    tools/ab.py --a 'OLD/bin/python -m spikard workload_app:app --workers 1 --port {port}' \\
                --a-cwd OLD_TREE/python \\
                --b '.venv/bin/python -m spikard workload_app:app --workers 1 --port {port}' \\
                --b-cwd python  path-int json-small mixed
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def group_usage(pgid: int) -> tuple[float, float, int]:
    """User and system CPU seconds of every live process in the group, and how many times
    their threads went to sleep (voluntary context switches). The kernel splits user from
    system time by where its ticks land, so only their sum is exact."""
    user = system = sleeps = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            user += int(fields[11])
            system += int(fields[12])
            for task in os.listdir(f"/proc/{entry}/task"):
                for line in Path(f"/proc/{entry}/task/{task}/status").read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches:"):
                        sleeps += int(line.split()[1])
        except OSError:
            continue
    return user / TICK, system / TICK, sleeps


def start(command: str, cwd: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    line = ["taskset", "-c", "0", *shlex.split(command.format(port=port))]
    proc = subprocess.Popen(line, cwd=cwd, start_new_session=True, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    raise SystemExit(f"{command} did not start")


def oha_line(workload: dict, port: int, load: list[str]) -> list[str]:
    """The oha command that sends `workload`'s sample request to `port`; `load`: how much
    (`-z 4s -c 50`, `-n 2000 -c 8`)."""
    sample = workload["sample"]
    line = ["oha", "--no-tui", "--output-format", "json", "--disable-compression", *load]
    line += ["-m", workload["method"]]
    if sample.get("content_type"):
        line += ["-T", sample["content_type"]]
    if sample.get("body_file"):
        line += ["-D", sample["body_file"]]
    line.append(f"http://127.0.0.1:{port}{sample['target']}")
    return line


def server_arguments(parser: argparse.ArgumentParser) -> None:
    """The two server command lines and their directories."""
    parser.add_argument("--a", required=True)
    parser.add_argument("--a-cwd", default=".")
    parser.add_argument("--b", required=True)
    parser.add_argument("--b-cwd", default=".")


def workload_table() -> dict[str, dict]:
    """The workloads by name, as the Rust workload server exports them."""
    table_dir = tempfile.mkdtemp()
    subprocess.run([str(ROOT / "target/release/spikard-rust-workloads"), "--export-table", table_dir], check=True)
    return {w["name"]: w for w in json.loads(Path(table_dir, "table.json").read_text())}


def run(workload: dict, port: int, pgid: int, seconds: float, concurrency: int) -> dict:
    line = ["taskset", "-c", "1", *oha_line(workload, port, ["-z", f"{seconds}s", "-c", str(concurrency)])]
    before = group_usage(pgid)
    report = json.loads(subprocess.run(line, check=True, capture_output=True).stdout)
    user, system, sleeps = (after - b for after, b in zip(group_usage(pgid), before, strict=True))
    codes = report["statusCodeDistribution"]
    errors = {k: v for k, v in report["errorDistribution"].items() if "deadline" not in k}
    ok = max(sum(v for k, v in codes.items() if k.startswith("2")), 1)
    failed = None if set(codes) <= {"200"} and not errors else f"{codes} {errors}"
    return {
        "rps": report["summary"]["requestsPerSec"],
        "cpu_us": (user + system) / ok * 1e6,
        "user_us": user / ok * 1e6,
        "system_us": system / ok * 1e6,
        "sleeps": sleeps / ok,
        "failed": failed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    server_arguments(parser)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--split",
        action="store_true",
        help="also print each server's user and system µs per request and how often it slept per request",
    )
    parser.add_argument("workloads", nargs="+")
    args = parser.parse_args()
    table = workload_table()
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        servers["a"] = start(args.a, args.a_cwd)
        servers["b"] = start(args.b, args.b_cwd)
        print(f"{'workload':<20} {'A req/s':>10} {'B req/s':>10} {'B/A':>6} {'A µs/req':>9} {'B µs/req':>9} {'B/A':>6}")
        for name in args.workloads:
            results: dict[str, list[dict]] = {"a": [], "b": []}
            for _ in range(args.runs):
                for key, (proc, port) in servers.items():
                    results[key].append(run(table[name], port, proc.pid, args.duration, args.concurrency))
            failed = [r["failed"] for rs in results.values() for r in rs if r["failed"]]
            if failed:
                print(f"{name:<20} FAILED: {failed[0]}")
                continue
            med = {
                k: (statistics.median(r["rps"] for r in v), statistics.median(r["cpu_us"] for r in v))
                for k, v in results.items()
            }
            (ar, ac), (br, bc) = med["a"], med["b"]
            print(f"{name:<20} {ar:>10,.0f} {br:>10,.0f} {br / ar:>6.2f} {ac:>9.1f} {bc:>9.1f} {bc / ac:>6.2f}")
            if args.split:
                for key, runs in results.items():
                    user, system, sleeps = (
                        statistics.median(r[k] for r in runs) for k in ("user_us", "system_us", "sleeps")
                    )
                    split = f"user {user:.1f} µs, system {system:.1f} µs, {sleeps:.2f} sleeps"
                    print(f"{'':<20} {key.upper()} per request: {split}")
    finally:
        for proc, _ in servers.values():
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
