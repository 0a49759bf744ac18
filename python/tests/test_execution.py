"""The execution model under real I/O: async handlers are asyncio tasks on the worker's own
loop (HTTP clients, timeouts and raw connections work under concurrent load), a blocking
``def`` handler on the thread pool leaves the worker responsive, every request has its own
context, and an async event stream's ``finally`` runs when its client leaves."""

from __future__ import annotations

import gc
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import ROOT, free_port, stop_server, wait_ready
from http_util import get_json, send
from spikard._spikard import TaskSet

OHA = shutil.which("oha")


class Server:
    def __init__(self, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.port, self.proc, self.log = port, proc, log


def start_io_app(log: Path, upstream: str = "http://127.0.0.1:1") -> Server:
    port = free_port()
    out = log.open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "spikard", "io_app:app", "--port", str(port), "--workers", "1"],
        cwd=ROOT / "python" / "tests",
        env={**os.environ, "UPSTREAM": upstream},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    wait_ready(port, proc)
    return Server(port, proc, log)


@pytest.fixture(scope="module")
def io_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    logs = tmp_path_factory.mktemp("io")
    upstream = start_io_app(logs / "upstream.log")
    server = start_io_app(logs / "server.log", f"http://127.0.0.1:{upstream.port}")
    yield server
    stop_server(server.proc)
    stop_server(upstream.proc)


def oha(url: str, seconds: float, concurrency: int = 50) -> dict:
    assert OHA, "oha is missing: make test installs it"
    out = subprocess.run(
        [OHA, "--no-tui", "--output-format", "json", "-z", f"{seconds}s", "-c", str(concurrency), url],
        check=True,
        capture_output=True,
    ).stdout
    return json.loads(out)


def assert_all_ok(report: dict) -> None:
    codes = report["statusCodeDistribution"]
    errors = {k: v for k, v in report["errorDistribution"].items() if "aborted due to deadline" not in k}
    assert set(codes) == {"200"}, codes
    assert not errors, errors
    assert codes["200"] > 50


def test_async_handler_runs_in_a_task_on_the_running_loop(io_server: Server) -> None:
    # The task is named after the handler (asyncio's default would be Task-N).
    assert get_json(io_server.port, "/task") == {"in_task": True, "loop_matches": True, "name": "task"}


@pytest.mark.parametrize("n", [1, 6, 23])
def test_all_tasks_lists_handler_tasks_and_lets_go_of_them(io_server: Server, n: int) -> None:
    # The registry's add is the extension's (no Python frame per task): the handler's own task
    # and the n it starts are listed while alive, and none is left once they are freed.
    assert get_json(io_server.port, f"/all_tasks/{n}") == {
        "self_listed": True,
        "children_listed": [f"child-{n}-{i}" for i in range(n)],
        "added": n,
        "left": 0,
        "native": True,
    }


def test_task_set_behaves_as_a_weak_set() -> None:
    """The same operations on a plain WeakSet and on one with the extension's add give the
    same members, pending removals and lengths, whether an iteration is in progress or not."""

    class Member:
        """Hashed by tag, so that both sets order their members alike and a half-done
        iteration holds the same member of each."""

        def __init__(self, tag: int) -> None:
            self.tag = tag

        def __hash__(self) -> int:
            return self.tag

    rng = random.Random(20261207)
    plain: weakref.WeakSet[Member] = weakref.WeakSet()
    native: weakref.WeakSet[Member] = weakref.WeakSet()
    vars(native)["add"] = TaskSet(native).add
    alive: list[tuple[Member, Member]] = []
    iterations: list[tuple[Iterator[Member], Iterator[Member]]] = []
    pending_seen = 0
    for tag in range(600):
        op = rng.random()
        if op < 0.45:
            pair = Member(tag), Member(tag)
            plain.add(pair[0])
            native.add(pair[1])
            alive.append(pair)
            del pair
        elif op < 0.8 and alive:
            alive.pop(rng.randrange(len(alive)))
        elif op < 0.9:
            # Started and left half-way: members freed meanwhile wait in _pending_removals.
            started = iter(plain), iter(native)
            if next(started[0], None) is not None and next(started[1], None) is not None:
                iterations.append(started)
            del started
        elif iterations:
            iterations.pop(rng.randrange(len(iterations)))
        gc.collect()
        pending = len(plain._pending_removals)  # type: ignore[attr-defined]
        assert len(native._pending_removals) == pending  # type: ignore[attr-defined]
        pending_seen = max(pending_seen, pending)
        assert len(native.data) == len(plain.data)
        assert len(native) == len(plain) >= len(alive)
        if not iterations:
            assert sorted(m.tag for m in native) == sorted(m.tag for m in plain) == sorted(a.tag for a, _ in alive)
    assert pending_seen > 0
    iterations.clear()
    alive.clear()
    gc.collect()
    assert len(native.data) == len(plain.data) == 0
    assert list(native) == []


@pytest.mark.parametrize("n", [3, 17])
def test_real_io_answers(io_server: Server, n: int) -> None:
    assert get_json(io_server.port, f"/httpx/{n}") == {"n": n, "upstream": f"x{n}"}
    assert get_json(io_server.port, f"/aiohttp/{n}") == {"n": n, "upstream": f"a{n}"}
    assert get_json(io_server.port, f"/timeout/{n}") == {"n": n}
    assert get_json(io_server.port, f"/open/{n}") == {"n": n, "upstream_ok": True}
    assert get_json(io_server.port, f"/to_thread/{n}") == {"n": n, "doubled": 2 * n, "in_task": True}


@pytest.mark.parametrize("route", ["httpx", "aiohttp", "timeout", "open", "to_thread"])
def test_real_io_under_concurrent_load(io_server: Server, route: str) -> None:
    before = io_server.log.read_text()
    assert_all_ok(oha(f"http://127.0.0.1:{io_server.port}/{route}/7", seconds=2))
    new_log = io_server.log.read_text()[len(before) :]
    assert "Traceback" not in new_log, new_log[-2000:]


def test_blocking_handler_leaves_the_worker_responsive(io_server: Server) -> None:
    result: dict = {}
    load = threading.Thread(target=lambda: result.update(oha(f"http://127.0.0.1:{io_server.port}/sleep", seconds=3)))
    load.start()
    time.sleep(0.5)
    slowest = 0.0
    while load.is_alive():
        started = time.monotonic()
        assert get_json(io_server.port, "/health") == {"status": "ok"}
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.05)
    load.join()
    assert_all_ok(result)
    # Inline, 50 clients of a 0.2 s handler serialize to 5 requests/s and /health waits
    # seconds; on the pool they overlap.
    assert result["summary"]["requestsPerSec"] > 100, result["summary"]
    assert slowest < 0.5, slowest


def test_every_request_has_its_own_context(io_server: Server) -> None:
    for n in (5, 9, 11):
        assert get_json(io_server.port, f"/ctx/{n}") == {"seen": None, "n": n}
        assert get_json(io_server.port, f"/actx/{n}") == {"seen": None, "n": n, "still": n}


@pytest.mark.parametrize("n", [2, 9])
def test_loop_callbacks_behave_as_asyncio_documents(io_server: Server, n: int) -> None:
    assert get_json(io_server.port, f"/callbacks/{n}") == {
        "ran": [["first", n], ["context", n], ["args", n * (n - 1) // 2], ["no context given", n]],
        "errors": [["ValueError", f"callback {n} failed", True]],
        "refused": [
            "call_soon() missing 1 required positional argument: 'callback'",
            "call_soon() got an unexpected keyword argument 'when'",
        ],
        "cancelled": [False, True],
        "own_context": None,
    }


def test_loop_debug_mode_uses_asyncio_call_soon(io_server: Server) -> None:
    answer = get_json(io_server.port, "/callbacks-debug")
    assert answer["after"] == "after"
    assert answer["debug"] == [False, True, False]
    assert answer["traced"] == [False, True, False]
    assert answer["refused"] and "coroutine" in answer["refused"], answer


def test_loop_debug_mode_reports_slow_callbacks(io_server: Server) -> None:
    before = io_server.log.read_text()
    assert get_json(io_server.port, "/callbacks-slow/7") == {"n": 7}
    time.sleep(0.2)
    new_log = io_server.log.read_text()[len(before) :]
    assert "Executing <Handle sleep(0.027)" in new_log, new_log[-2000:]
    assert "took" in new_log


def test_async_stream_cleanup_awaits_on_disconnect(io_server: Server) -> None:
    before = get_json(io_server.port, "/cleanups")
    streams = 20
    for _ in range(streams):
        with socket.create_connection(("127.0.0.1", io_server.port)) as conn:
            conn.sendall(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
            assert b"data: " in conn.recv(4096) + conn.recv(4096)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        now = get_json(io_server.port, "/cleanups")
        if now["finished"] - before["finished"] == streams:
            break
        time.sleep(0.05)
    assert now["started"] - before["started"] == streams
    assert now["finished"] - before["finished"] == streams


def test_a_def_handler_that_holds_the_engine_thread_is_logged(io_server: Server) -> None:
    assert get_json(io_server.port, "/slow") == {"slept": 0.15}
    deadline = time.monotonic() + 5
    while "handler slow held the engine thread for 0.1" not in io_server.log.read_text():
        assert time.monotonic() < deadline, io_server.log.read_text()[-2000:]
        time.sleep(0.05)
    assert "blocking=True" in io_server.log.read_text()


@pytest.mark.parametrize("n", [2, 5])
def test_a_blocking_generator_is_pulled_on_the_thread_pool(io_server: Server, n: int) -> None:
    reply = send(io_server.port, "GET", f"/bstream/{n}")
    assert reply.status == 200 and reply.content_type.startswith("text/event-stream")
    events = [
        json.loads(line[len("data: ") :]) for line in reply.body.decode().splitlines() if line.startswith("data: ")
    ]
    assert [e["i"] for e in events] == list(range(n))
    # Pool threads are not Python-made, so Python names them Dummy-N; the engine thread is
    # the worker's main thread.
    threads = {e["thread"] for e in events}
    assert all(t.startswith("Dummy-") for t in threads), threads
