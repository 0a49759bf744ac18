"""The Python workload server's database routes against a real PostgreSQL (``DATABASE_URL``;
``make test`` starts one): ``async def`` handlers on the engine's pool (``spikard.postgres``)
and, under ``/asyncpg``, on asyncpg, and under ``/sync`` ``def`` handlers on psycopg, every
answer checked against the database itself."""

from __future__ import annotations

import html
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from conftest import ROOT, free_port, start_server, stop_server, wait_ready
from http_util import Reply, send

DATABASE_URL = os.environ.get("DATABASE_URL")
if not DATABASE_URL:
    if os.environ.get("SPIKARD_REQUIRE_DATABASE"):
        raise RuntimeError("SPIKARD_REQUIRE_DATABASE is set but DATABASE_URL is not")
    pytest.skip("DATABASE_URL is not set (make test starts a PostgreSQL)", allow_module_level=True)

PREFIXES = ["", "/asyncpg", "/sync"]


@pytest.fixture(scope="module")
def db() -> Iterator[psycopg.Connection]:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def port(table_dir: Path) -> Iterator[int]:
    proc, port = start_server(table_dir, workers=2)
    yield port
    stop_server(proc)


def rows_of(port: int, target: str, count: int) -> list[dict]:
    reply = send(port, "GET", target)
    assert reply.status == 200, reply.body[:300]
    assert reply.content_type == "application/json"
    rows = reply.json()
    assert isinstance(rows, list) and len(rows) == count, (target, rows)
    return rows


def assert_held(db: psycopg.Connection, rows: list[dict]) -> None:
    stored = dict(db.execute("SELECT id, randomnumber FROM world WHERE id = ANY(%s)", ([r["id"] for r in rows],)))
    for row in rows:
        assert set(row) == {"id", "randomNumber"}
        assert stored[row["id"]] == row["randomNumber"], row
        assert 1 <= row["randomNumber"] <= 10_000


def expected_fortunes(db: psycopg.Connection) -> bytes:
    rows = [*db.execute("SELECT id, message FROM fortune").fetchall(), (0, "Additional fortune added at request time.")]
    rows.sort(key=lambda r: r[1])
    cells = "".join(f"<tr><td>{i}</td><td>{html.escape(m)}</td></tr>" for i, m in rows)
    return (
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
        f"<tr><th>id</th><th>message</th></tr>{cells}</table></body></html>"
    ).encode()


@pytest.mark.parametrize("prefix", PREFIXES)
def test_db_rows_are_the_tables(port: int, db: psycopg.Connection, prefix: str) -> None:
    seen = set()
    for _ in range(10):
        reply = send(port, "GET", f"{prefix}/db")
        assert reply.status == 200 and reply.content_type == "application/json"
        assert_held(db, [reply.json()])
        seen.add(reply.json()["id"])
    assert len(seen) > 1


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(
    ("query", "count"),
    [("?queries=7", 7), ("?queries=20", 20), ("", 1), ("?queries=0", 1), ("?queries=x", 1), ("?queries=501", 500)],
)
def test_queries_are_clamped_and_real(port: int, db: psycopg.Connection, prefix: str, query: str, count: int) -> None:
    assert_held(db, rows_of(port, f"{prefix}/queries{query}", count))


@pytest.mark.parametrize("prefix", PREFIXES)
def test_updates_are_written_before_the_answer(port: int, db: psycopg.Connection, prefix: str) -> None:
    (before,) = db.execute("SELECT sum(randomnumber) FROM world").fetchone()
    for count in (1, 5, 20, 50):
        rows = rows_of(port, f"{prefix}/updates?queries={count}", count)
        assert len({r["id"] for r in rows}) == count
        assert_held(db, rows)
    (after,) = db.execute("SELECT sum(randomnumber) FROM world").fetchone()
    assert after != before


@pytest.mark.parametrize("prefix", PREFIXES)
def test_fortunes_byte_for_byte(port: int, db: psycopg.Connection, prefix: str) -> None:
    reply = send(port, "GET", f"{prefix}/fortunes")
    assert reply.status == 200
    assert reply.content_type == "text/html; charset=utf-8"
    assert reply.body == expected_fortunes(db)
    assert b"<script>" not in reply.body
    assert "速さは正しさの後に来る。".encode() in reply.body
    db.execute(
        "INSERT INTO fortune VALUES (2000, %s) ON CONFLICT (id) DO UPDATE SET message = excluded.message",
        (f"t{time.time()} & <b>",),
    )
    try:
        reply = send(port, "GET", f"{prefix}/fortunes")
        assert reply.body == expected_fortunes(db)
    finally:
        db.execute("DELETE FROM fortune WHERE id = 2000")


def terminate_blocked(db: psycopg.Connection, holder: int, request: Callable[[], Reply]) -> Reply:
    """Runs ``request`` in a thread until its query waits on a lock that backend ``holder``
    holds, ends the waiting backend with ``pg_terminate_backend`` (as an administrator or a
    restart does), and returns the reply."""
    replies: list[Reply] = []
    thread = threading.Thread(target=lambda: replies.append(request()))
    thread.start()
    deadline = time.monotonic() + 10
    blocked: list[int] = []
    while not blocked and time.monotonic() < deadline:
        time.sleep(0.01)
        waiting = db.execute("SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (holder,))
        blocked = [pid for (pid,) in waiting]
    for pid in blocked:
        db.execute("SELECT pg_terminate_backend(%s)", (pid,))
    thread.join(15)
    assert blocked, "the request's query never waited on the lock"
    assert replies, "no reply after its connection was ended"
    return replies[0]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(
    ("route", "lock"),
    [("/db", "ACCESS EXCLUSIVE"), ("/updates?queries=3", "EXCLUSIVE")],
)
def test_a_connection_the_database_ends_is_a_503_and_then_replaced(
    port: int, db: psycopg.Connection, prefix: str, route: str, lock: str
) -> None:
    target = f"{prefix}{route}"
    assert send(port, "GET", target).status == 200
    with psycopg.connect(DATABASE_URL) as holder:
        # ACCESS EXCLUSIVE holds up the read, EXCLUSIVE only the update after the reads.
        holder.execute(f"LOCK TABLE world IN {lock} MODE")
        reply = terminate_blocked(db, holder.info.backend_pid, lambda: send(port, "GET", target))
        holder.rollback()
    doc = reply.problem(503)
    assert "database" in doc["detail"], doc
    # The lost connection is not handed out again: the next requests are answered.
    for _ in range(4):
        reply = send(port, "GET", target)
        assert reply.status == 200, reply.body[:300]
        rows = reply.json()
        assert_held(db, rows if isinstance(rows, list) else [rows])


DATABASE_ROUTES = [
    "/db",
    "/queries?queries=3",
    "/updates?queries=3",
    "/fortunes",
    "/asyncpg/db",
    "/asyncpg/fortunes",
    "/sync/db",
    "/sync/fortunes",
]


def assert_every_route_unavailable(tmp_path: Path, url: str) -> None:
    """A server on ``url`` answers every database route with a 503 problem document within
    the pools' 5 s timeouts, and keeps serving."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spikard", "workload_app:app", "--port", str(port), "--workers", "1"],
        cwd=ROOT / "python",
        env={**os.environ, "DATABASE_URL": url},
        stderr=(tmp_path / "server.log").open("wb"),
        start_new_session=True,
    )
    try:
        wait_ready(port, proc)
        for target in DATABASE_ROUTES:
            started = time.monotonic()
            doc = send(port, "GET", target).problem(503)
            assert "database" in doc["detail"], (target, doc)
            assert time.monotonic() - started < 8, target
        assert send(port, "GET", "/health").status == 200
    finally:
        stop_server(proc)


def test_unreachable_database_is_a_503(tmp_path: Path) -> None:
    assert_every_route_unavailable(tmp_path, f"postgresql://nobody@127.0.0.1:{free_port()}/nothing")


def pg_ctl() -> list[str]:
    """``pg_ctl``, run as the cluster's owner (``tools/pg.sh`` makes clusters ``postgres``'s
    when run as root)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        pytest.skip("pg_ctl is not installed")
    as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return [*as_owner, str(found[-1])]


def test_a_database_shutting_down_is_a_503(tmp_path: Path) -> None:
    """PostgreSQL in a smart shutdown keeps its sessions and refuses new connections with
    SQLSTATE 57P03 ("the database system is shutting down"): every driver's route answers 503."""
    command = pg_ctl()
    # A directory of its own under /tmp, which the cluster's owner can reach.
    cluster = Path(tempfile.mkdtemp(prefix="spikard-pg-", dir="/tmp"))
    started = subprocess.run([ROOT / "tools" / "pg.sh", "start", str(cluster)], capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip().splitlines()[-1]
    try:
        with psycopg.connect(url) as session:
            subprocess.run([*command, "-D", str(cluster / "data"), "-m", "smart", "-W", "stop"], check=True)
            deadline = time.monotonic() + 10
            while True:
                with pytest.raises(psycopg.OperationalError) as refused:
                    psycopg.connect(url, connect_timeout=2).close()
                if "shutting down" in str(refused.value) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert "shutting down" in str(refused.value), refused.value
            session.execute("SELECT 1")
            assert_every_route_unavailable(tmp_path, url)
    finally:
        subprocess.run([ROOT / "tools" / "pg.sh", "stop", str(cluster)], check=False)
        shutil.rmtree(cluster, ignore_errors=True)


def test_without_a_database_url_the_routes_say_so(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "spikard", "workload_app:app", "--port", str(port), "--workers", "1"],
        cwd=ROOT / "python",
        env=env,
        stderr=(tmp_path / "server.log").open("wb"),
        start_new_session=True,
    )
    try:
        wait_ready(port, proc)
        for target in ["/db", "/fortunes", "/asyncpg/db", "/sync/queries?queries=2"]:
            doc = send(port, "GET", target).problem(503)
            assert "set DATABASE_URL" in doc["detail"], target
    finally:
        stop_server(proc)
