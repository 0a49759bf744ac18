"""``spikard.postgres`` against a real PostgreSQL (``DATABASE_URL``; ``make test`` starts one):
values of every supported type in both directions, the errors a query can end in, pooled and
acquired connections, transactions, pipelines, cancellation, the 503 the engine answers for an
unreachable database, and the pool awaited outside a server (scripts, start-up hooks, forked
workers). Each check reads the database back with psycopg, a second driver."""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import decimal
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from conftest import free_port
from spikard import Spikard, TestClient
from spikard.postgres import Pool, PostgresError, Unavailable

DATABASE_URL = os.environ.get("DATABASE_URL")
if not DATABASE_URL:
    if os.environ.get("SPIKARD_REQUIRE_DATABASE"):
        raise RuntimeError("SPIKARD_REQUIRE_DATABASE is set but DATABASE_URL is not")
    pytest.skip("DATABASE_URL is not set (make test starts a PostgreSQL)", allow_module_level=True)

TABLE = f"pg_test_{os.getpid()}"


@pytest.fixture(scope="module")
def db() -> Iterator[psycopg.Connection]:
    with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {TABLE} (id integer PRIMARY KEY, label text NOT NULL)")
        yield conn
        conn.execute(f"DROP TABLE {TABLE}")


def run(coro_fn, *args):  # noqa: ANN001, ANN201 - a helper over any coroutine function
    """Runs ``coro_fn(pool, *args)`` in a fresh asyncio loop (the pool outside a server)."""

    async def main():  # noqa: ANN202
        pool = Pool(DATABASE_URL, max_size=4)
        try:
            return await coro_fn(pool, *args)
        finally:
            await pool.close()

    return asyncio.run(main())


def values() -> list[tuple[str, object]]:
    """(SQL type, a Python value of it), different on every run."""
    r = random.Random()
    when = datetime.datetime(2000, 1, 1) + datetime.timedelta(
        seconds=r.randrange(10**9), microseconds=r.randrange(10**6)
    )
    return [
        ("boolean", r.random() < 0.5),
        ("smallint", r.randrange(-(2**15), 2**15)),
        ("integer", r.randrange(-(2**31), 2**31)),
        ("bigint", r.randrange(-(2**63), 2**63)),
        ("double precision", r.uniform(-1e300, 1e300)),
        ("real", float(r.randrange(-1000, 1000)) / 4),
        ("numeric", decimal.Decimal(f"{r.randrange(-(10**30), 10**30)}.{r.randrange(10**12):012d}")),
        ("numeric", decimal.Decimal(f"0.{r.randrange(10**6):06d}1")),
        ("text", "".join(r.choice("aé中😀 '\"\\\n") for _ in range(r.randrange(40)))),
        ("varchar(200)", f"v{r.random()}"),
        ("bytea", r.randbytes(r.randrange(64))),
        ("uuid", uuid.UUID(int=r.getrandbits(128))),
        ("date", datetime.date(1900, 1, 1) + datetime.timedelta(days=r.randrange(80_000))),
        ("time", datetime.time(r.randrange(24), r.randrange(60), r.randrange(60), r.randrange(10**6))),
        ("timestamp", when),
        ("timestamptz", when.replace(tzinfo=datetime.UTC)),
        ("jsonb", {"n": r.randrange(1000), "list": [1, "two", None, {"x": r.random()}]}),
        ("json", [r.randrange(10), "s", True]),
        ("integer[]", [r.randrange(-100, 100) for _ in range(r.randrange(6))] + [None]),
        ("text[]", [f"t{r.randrange(100)}", "", "with,comma"]),
        ("bigint", None),
    ]


def test_values_of_every_type_go_in_and_come_back() -> None:
    cases = values()

    async def check(pool: Pool) -> None:
        for sql_type, value in cases:
            back = await pool.fetchval(f"SELECT $1::{sql_type}", value)
            assert back == value, (sql_type, value, back)
            assert type(back) is type(value), (sql_type, type(back))
        # All at once, as one row.
        placeholders = ", ".join(f"${i + 1}::{t}" for i, (t, _) in enumerate(cases))
        row = await pool.fetchrow(f"SELECT {placeholders}", *[v for _, v in cases])
        assert row == tuple(v for _, v in cases)
        # A tuple is an array as a list is, and a list holds one execution's arguments as a tuple does.
        numbers = tuple(random.randrange(-1000, 1000) for _ in range(random.randrange(1, 30)))
        assert await pool.fetchval("SELECT $1::integer[]", numbers) == list(numbers)
        assert await pool.fetchmany("SELECT $1::integer + $2", [[n, 1] for n in numbers]) == [(n + 1,) for n in numbers]

    run(check)


def test_values_postgres_makes_are_converted_as_psycopg_reads_them(db: psycopg.Connection) -> None:
    query = (
        "SELECT 12.50::numeric, -0.001::numeric, 'NaN'::numeric, 10000::numeric, ARRAY[[1,2],[3,4]], "
        "'{}'::int[], now()::timestamptz, '2024-02-29'::date, gen_random_uuid(), 'x'::char, 3::oid, NULL::text"
    )

    async def fetch(pool: Pool) -> tuple:
        return await pool.fetchrow(query)

    mine = run(fetch)
    theirs = db.execute(query).fetchone()
    assert str(mine[0]) == "12.50" and str(mine[1]) == "-0.001" and mine[2].is_nan() and mine[3] == 10000
    assert mine[4] == theirs[4] == [[1, 2], [3, 4]]
    assert mine[5] == [] and mine[11] is None
    assert abs(mine[6] - theirs[6]) < datetime.timedelta(seconds=5) and mine[6].tzinfo is not None
    assert mine[7] == theirs[7] and isinstance(mine[8], uuid.UUID) and mine[9] == "x" and mine[10] == 3


def test_rows_are_what_the_table_holds(db: psycopg.Connection) -> None:
    rows = [(i, f"label {random.random()}") for i in random.sample(range(1, 10**6), 25)]
    with db.cursor() as cur:
        cur.executemany(f"INSERT INTO {TABLE} VALUES (%s, %s)", rows)

    async def read(pool: Pool) -> tuple:
        ids = [i for i, _ in rows]
        return (
            await pool.fetch(f"SELECT id, label FROM {TABLE} WHERE id = ANY($1) ORDER BY id", ids),
            await pool.fetchrow(f"SELECT id, label FROM {TABLE} WHERE id = $1", ids[3]),
            await pool.fetchrow(f"SELECT id FROM {TABLE} WHERE id = -1"),
            await pool.fetchval(f"SELECT id, label FROM {TABLE} WHERE id = $1", ids[5], column=1),
            await pool.fetchval(f"SELECT id FROM {TABLE} WHERE id = -1"),
            await pool.fetchmany(f"SELECT label FROM {TABLE} WHERE id = $1", [(i,) for i in ids]),
            await pool.execute(f"DELETE FROM {TABLE} WHERE id = ANY($1)", ids[:10]),
        )

    everything, row, none, label, missing, labels, deleted = run(read)
    assert everything == sorted(rows)
    assert row == rows[3] and none is None and label == rows[5][1] and missing is None
    assert labels == [(label,) for _, label in rows]
    assert deleted == 10
    (left,) = db.execute(f"SELECT count(*) FROM {TABLE} WHERE id = ANY(%s)", ([i for i, _ in rows],)).fetchone()
    assert left == 15
    db.execute(f"DELETE FROM {TABLE}")


def test_executemany_writes_every_row(db: psycopg.Connection) -> None:
    rows = [(i, f"many {i * 7}") for i in random.sample(range(1, 10**6), 40)]

    async def write(pool: Pool) -> tuple[int, int]:
        insert = f"INSERT INTO {TABLE} VALUES ($1, $2)"
        # A list of executions, and any other iterable of them (a generator of lists).
        listed = await pool.executemany(insert, rows[:25])
        generated = await pool.executemany(insert, ([i, label] for i, label in rows[25:]))
        return listed, generated

    assert run(write) == (25, 15)
    stored = db.execute(f"SELECT id, label FROM {TABLE} ORDER BY id").fetchall()
    assert stored == sorted(rows)
    db.execute(f"DELETE FROM {TABLE}")


def test_errors_say_what_went_wrong(db: psycopg.Connection) -> None:
    db.execute(f"INSERT INTO {TABLE} VALUES (1, 'one')")

    async def failures(pool: Pool) -> dict[str, BaseException]:
        out: dict[str, BaseException] = {}
        attempts = {
            "syntax": pool.fetch("SELEC 1"),
            "unique": pool.execute(f"INSERT INTO {TABLE} VALUES (1, 'again')"),
            "type": pool.fetchval("SELECT $1::integer", "seven"),
            "range": pool.fetchval("SELECT $1::integer", 2**40),
            "count": pool.fetchval("SELECT $1::integer, $2::integer", 1),
            "column": pool.fetchval("SELECT 1", column=3),
            "cast": pool.fetchval("SELECT '1 day'::interval"),
            # The third of five rows fails at its second column: the rows and the row built
            # so far are dropped, nothing half-made comes back.
            "cast_in_rows": pool.fetch(
                "SELECT n, CASE WHEN n = 3 THEN '1 day'::interval END FROM generate_series(1, 5) n"
            ),
            "naive": pool.fetchval("SELECT $1::timestamptz", datetime.datetime(2024, 1, 1)),
        }
        for name, attempt in attempts.items():
            try:
                await attempt
            except Exception as err:  # noqa: BLE001 - each is checked below
                out[name] = err
        with pytest.raises(TypeError, match="cannot send a object"):
            pool.fetch("SELECT $1", object())
        with pytest.raises(TypeError, match=r"parameter \$2: cannot send a object"):
            pool.fetch("SELECT $1::integer, $2::integer[]", 1, [1, 2, object()])
        deep: list = [1]
        for _ in range(100):
            deep = [deep]
        with pytest.raises(ValueError, match="nested too deeply"):
            pool.fetch("SELECT $1::integer[]", deep)
        # Still usable after every one of them.
        out["after"] = await pool.fetchval("SELECT 41 + 1")
        return out

    errors = run(failures)
    assert isinstance(errors["syntax"], PostgresError) and errors["syntax"].sqlstate == "42601"
    assert isinstance(errors["unique"], PostgresError) and errors["unique"].sqlstate == "23505"
    assert "already exists" in (errors["unique"].detail or "")
    assert isinstance(errors["type"], TypeError) and "parameter $1" in str(errors["type"])
    assert isinstance(errors["range"], ValueError) and "out of range for int4" in str(errors["range"])
    assert isinstance(errors["count"], TypeError) and "takes 2 parameters" in str(errors["count"])
    assert isinstance(errors["column"], IndexError)
    assert isinstance(errors["cast"], TypeError) and "interval" in str(errors["cast"])
    assert isinstance(errors["cast_in_rows"], TypeError) and "column 2" in str(errors["cast_in_rows"])
    assert isinstance(errors["naive"], TypeError) and "tzinfo" in str(errors["naive"])
    assert errors["after"] == 42
    db.execute(f"DELETE FROM {TABLE}")


def test_transactions_commit_or_roll_back(db: psycopg.Connection) -> None:
    kept, dropped = random.sample(range(1, 10**6), 2)

    async def work(pool: Pool) -> tuple:
        async with pool.transaction() as conn:
            await conn.execute(f"INSERT INTO {TABLE} VALUES ($1, 'kept')", kept)
            first = await conn.fetchval("SELECT txid_current()")
            same = await conn.fetchval("SELECT txid_current()")
            inside = conn.in_transaction
        with pytest.raises(ZeroDivisionError):
            async with pool.transaction() as conn:
                await conn.execute(f"INSERT INTO {TABLE} VALUES ($1, 'dropped')", dropped)
                1 / 0  # noqa: B018 - the block raises
        async with pool.acquire() as conn:
            pids = {await conn.fetchval("SELECT pg_backend_pid()") for _ in range(5)}
            async with conn.transaction():
                with pytest.raises(PostgresError, match="already open"):
                    conn.transaction()
            outside = conn.in_transaction
        with pytest.raises(PostgresError, match="released"):
            conn.fetchval("SELECT 1")
        return first == same, inside, len(pids), outside, conn.released

    assert run(work) == (True, True, 1, False, True)
    labels = dict(db.execute(f"SELECT id, label FROM {TABLE}").fetchall())
    assert labels == {kept: "kept"}
    db.execute(f"DELETE FROM {TABLE}")


def test_a_connection_given_back_inside_a_transaction_is_not_reused(db: psycopg.Connection) -> None:
    row = random.randrange(1, 10**6)

    async def leave_open(pool: Pool) -> bool:
        conn = await pool._acquire()
        await conn.transaction().__aenter__()
        await conn.execute(f"INSERT INTO {TABLE} VALUES ($1, 'left open')", row)
        conn.release()
        # No later query runs inside that transaction (where the row would be visible).
        seen = {await pool.fetchval(f"SELECT count(*) FROM {TABLE} WHERE id = $1", row) for _ in range(8)}
        return seen == {0}

    assert run(leave_open)
    assert db.execute(f"SELECT count(*) FROM {TABLE} WHERE id = %s", (row,)).fetchone() == (0,)


def test_text_that_is_not_utf8_is_the_columns_error() -> None:
    """A session that asks for another client encoding gets text that is not UTF-8: the
    column it arrives in is named in a TypeError, and the connection serves on."""
    word = "".join(random.choices("abcdefgh", k=6))

    async def latin1(pool: Pool) -> tuple:
        async with pool.acquire() as conn:
            async with conn.transaction():
                await conn.execute("SET LOCAL client_encoding TO 'LATIN1'")
                plain = await conn.fetchval(f"SELECT '{word}'::text")
                with pytest.raises(TypeError) as refused:
                    await conn.fetchrow(f"SELECT 7, '{word}' || chr(233) AS accented")
                after = await conn.fetchval("SELECT 40 + 2")
            # SET LOCAL ended with the transaction: the same text reads as UTF-8 again.
            accented = await conn.fetchval(f"SELECT '{word}' || chr(233)")
        return plain, str(refused.value), after, accented

    plain, error, after, accented = run(latin1)
    assert plain == word and after == 42
    assert "column 2 (accented) of type text" in error and "utf-8" in error.lower()
    assert accented == f"{word}é"


def test_unreachable_database_is_unavailable() -> None:
    async def unreachable() -> BaseException:
        pool = Pool(f"postgresql://nobody@127.0.0.1:{free_port()}/none", connect_timeout=2)
        try:
            await pool.fetchval("SELECT 1")
        except Exception as err:  # noqa: BLE001 - checked below
            return err
        raise AssertionError("a closed port answered")

    err = asyncio.run(unreachable())
    assert isinstance(err, Unavailable) and isinstance(err, ConnectionError)
    assert "Connection refused" in str(err)


def test_a_closed_pool_refuses_queries() -> None:
    async def closed() -> None:
        pool = Pool(DATABASE_URL)
        assert await pool.fetchval("SELECT 1") == 1
        await pool.close()
        assert pool.closed
        with pytest.raises(PostgresError, match="closed"):
            pool.fetchval("SELECT 1")

    asyncio.run(closed())


def test_bad_configuration_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="connection string"):
        Pool("postgresql://[::1")
    with pytest.raises(ValueError, match="max_size"):
        Pool(DATABASE_URL, max_size=0)
    with pytest.raises(ValueError, match="connect_timeout"):
        Pool(DATABASE_URL, connect_timeout=-1)


def test_without_a_running_loop_a_query_says_so() -> None:
    pool = Pool(DATABASE_URL)
    with pytest.raises(RuntimeError, match="no running event loop"):
        pool.fetchval("SELECT 1")


# -- inside the server ----------------------------------------------------------------------

request_id: contextvars.ContextVar[int] = contextvars.ContextVar("request_id")


def make_app(pool: Pool, broken: Pool) -> Spikard:
    app = Spikard()
    started: list[int] = []

    @app.on_startup
    async def warm() -> None:
        # Before the engine drives the loop: the background runtime answers.
        started.append(await pool.fetchval("SELECT 5 + $1::int", 2))

    @app.get("/row/{id}")
    async def row(id: int) -> dict:
        request_id.set(id)
        label = await pool.fetchval(f"SELECT label FROM {TABLE} WHERE id = $1", id)
        task = asyncio.current_task()
        return {"id": request_id.get(), "label": label, "task": task.get_name() if task else None}

    @app.get("/started")
    def started_with() -> dict:
        return {"started": started}

    @app.get("/broken")
    async def down() -> dict:
        return {"n": await broken.fetchval("SELECT 1")}

    @app.get("/slow")
    async def slow() -> dict:
        try:
            await asyncio.wait_for(pool.fetchval("SELECT pg_sleep(0.3)"), 0.05)
        except TimeoutError:
            return {"timed_out": True}
        return {"timed_out": False}

    @app.get("/debug")
    async def debug_mode() -> dict:
        # In debug mode the answer wakes the task through asyncio's own loop iteration.
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        try:
            value = await pool.fetchval("SELECT $1::int + 1", request_id.get(41))
        finally:
            loop.set_debug(False)
        return {"value": value}

    @app.get("/held/{ms}")
    async def held(ms: int) -> dict:
        # An idle connection is handed over at once; with every one held, the next waits.
        async with pool.acquire() as conn:
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            await asyncio.sleep(ms / 1000)
            same = await conn.fetchval("SELECT pg_backend_pid()")
        return {"pid": pid, "same": pid == same}

    @app.get("/acquired/{k}")
    async def acquired(k: int) -> dict:
        # One acquire() holds one connection at a time and gives it back when its block
        # ends, raising or not.
        holder = pool.acquire()
        async with holder as conn:
            value = await conn.fetchval("SELECT $1::int * 3", k)
            try:
                await holder.__aenter__()
                again = "entered twice"
            except RuntimeError as err:
                again = str(err)
        released = conn.released
        try:
            async with pool.acquire() as failing:
                raise LookupError(k, await failing.fetchval("SELECT $1::int - 1", k))
        except LookupError as err:
            raised = list(err.args)
        async with holder as conn:
            reused = await conn.fetchval("SELECT $1::int + 5", k)
        return {
            "value": value,
            "again": again,
            "released": [released, failing.released, conn.released],
            "raised": raised,
            "reused": reused,
            "exit": await holder.__aexit__(None, None, None),
        }

    @app.get("/gather/{n}")
    async def gather(n: int) -> list:
        return list(await asyncio.gather(*(pool.fetchval("SELECT $1::int * 2", i) for i in range(n))))

    return app


def test_handlers_await_queries_on_the_engine_thread(db: psycopg.Connection) -> None:
    rows = {i: f"row {i} {random.random()}" for i in random.sample(range(1, 10**6), 30)}
    with db.cursor() as cur:
        cur.executemany(f"INSERT INTO {TABLE} VALUES (%s, %s)", list(rows.items()))
    pool = Pool(DATABASE_URL, max_size=2)
    broken = Pool(f"postgresql://nobody@127.0.0.1:{free_port()}/none", connect_timeout=2)
    answers: dict[int, dict] = {}
    failures: list[BaseException] = []
    with TestClient(make_app(pool, broken)) as client:
        assert client.get("/started").json() == {"started": [7]}

        def fetch(ids: list[int]) -> None:
            try:
                for i in ids:
                    answers[i] = client.get(f"/row/{i}").json()
            except BaseException as err:  # noqa: BLE001 - reported below
                failures.append(err)

        ids = list(rows)
        # Ten clients at once on a pool of two connections: requests wait for a connection.
        threads = [threading.Thread(target=fetch, args=(ids[k::10],)) for k in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures
        assert answers == {i: {"id": i, "label": label, "task": "make_app.<locals>.row"} for i, label in rows.items()}

        reply = client.get("/broken")
        assert reply.status_code == 503
        assert reply.headers["content-type"] == "application/problem+json"
        assert "cannot be reached" in reply.json()["detail"]

        assert client.get("/slow").json() == {"timed_out": True}
        # The cancelled query ran to its end on its connection; the pool still serves.
        n = random.randrange(5, 40)
        assert client.get(f"/gather/{n}").json() == [2 * i for i in range(n)]
        assert client.get(f"/row/{ids[0]}").json()["label"] == rows[ids[0]]
        assert client.get("/debug").json() == {"value": 42}

        for k in random.sample(range(-1000, 1000), 3):
            assert client.get(f"/acquired/{k}").json() == {
                "value": 3 * k,
                "again": "this acquire() already holds a connection: call pool.acquire() for another",
                "released": [True, True, True],
                "raised": [k, k - 1],
                "reused": k + 5,
                "exit": None,
            }

        # Six requests holding a connection each for `ms`, on a pool of two: three rounds.
        ms = random.randrange(60, 100)
        held: list[dict] = []
        started = time.monotonic()
        holders = [threading.Thread(target=lambda: held.append(client.get(f"/held/{ms}").json())) for _ in range(6)]
        for t in holders:
            t.start()
        for t in holders:
            t.join()
        elapsed = time.monotonic() - started
        assert len(held) == 6 and all(answer["same"] for answer in held)
        assert len({answer["pid"] for answer in held}) <= 2
        assert elapsed >= 3 * ms / 1000
    db.execute(f"DELETE FROM {TABLE}")


def _script(tmp_path, source: str) -> list[str]:  # noqa: ANN001
    """The command that runs `source` (indented as written) as a script of its own."""
    path = tmp_path / "script.py"
    path.write_text(textwrap.dedent(source))
    return [sys.executable, str(path)]


def test_a_script_exits_cleanly_while_queries_are_still_being_answered(tmp_path) -> None:  # noqa: ANN001
    # asyncio.run returns after the first answer; the background thread is still handing
    # the others to the closed loop as the interpreter finalizes. On one CPU, the two
    # threads interleave most; without the exit hook about one run in ten aborted.
    script = _script(
        tmp_path,
        f"""
        import asyncio
        from spikard.postgres import Pool
        pool = Pool({DATABASE_URL!r}, max_size=4)
        async def first():
            queries = [
                asyncio.ensure_future(pool.fetchval("SELECT $1::int * 3", i))
                for i in range(1, 41)
            ]
            done, _ = await asyncio.wait(queries, return_when=asyncio.FIRST_COMPLETED)
            return done.pop().result()
        print(asyncio.run(first()))
        """,
    )
    cpu = min(os.sched_getaffinity(0))
    for _ in range(40):
        done = subprocess.run(
            script,
            timeout=60,
            capture_output=True,
            text=True,
            preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),  # noqa: PLW1509
        )
        assert done.returncode == 0, done.stderr
        answer = int(done.stdout)
        assert answer % 3 == 0 and 3 <= answer <= 120


def test_a_forked_worker_gets_connections_of_its_own(tmp_path) -> None:  # noqa: ANN001
    script = _script(
        tmp_path,
        f"""
        import asyncio, os, sys
        from spikard.postgres import Pool
        pool = Pool({DATABASE_URL!r}, max_size=1)
        async def pid():
            return await pool.fetchval("SELECT pg_backend_pid()")
        parent = asyncio.run(pid())
        child = os.fork()
        if child == 0:
            mine = asyncio.run(asyncio.wait_for(pid(), 10))
            os._exit(0 if mine != parent else 3)
        _, status = os.waitpid(child, 0)
        again = asyncio.run(pid())
        sys.exit(os.waitstatus_to_exitcode(status) or (0 if again == parent else 4))
        """,
    )
    done = subprocess.run(script, timeout=60, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
