"""Fixtures: the route table (exported by the Rust workload binary) and the Python workload
server, started as a real process on a free port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


@pytest.fixture(scope="session")
def table_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("table")
    binary = os.environ.get("SPIKARD_RUST_WORKLOADS") or str(ROOT / "target/debug/spikard-rust-workloads")
    if not Path(binary).exists():
        subprocess.run(["cargo", "build", "-q", "-p", "spikard-rust-workloads"], cwd=ROOT, check=True)
    subprocess.run([binary, "--export-table", str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def table(table_dir: Path) -> list[dict]:
    return json.loads((table_dir / "table.json").read_text())


def start_server(table_dir: Path, workers: int = 1) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spikard",
            "workload_app:app",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--require-routes",
            str(table_dir / "table.json"),
        ],
        cwd=ROOT / "python",
        start_new_session=True,
    )
    wait_ready(port, proc)
    return proc, port


def stop_server(proc: subprocess.Popen[bytes]) -> int:
    proc.terminate()
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


@pytest.fixture(scope="session")
def server(table_dir: Path) -> Iterator[int]:
    proc, port = start_server(table_dir)
    yield port
    stop_server(proc)
