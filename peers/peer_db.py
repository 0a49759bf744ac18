"""The database workloads for the peer frameworks: asyncpg, one pool per worker process,
opened on first use on that worker's event loop; the same SQL and TechEmpower rules as
Spikard's own servers (a random row per query, no caching, ``queries`` clamped to 1..500)."""

from __future__ import annotations

import asyncio
import html
import os
import random
import re
from operator import itemgetter
from typing import Any

import asyncpg

SELECT_WORLD = "SELECT randomnumber FROM world WHERE id = $1"
UPDATE_WORLD = (
    "UPDATE world SET randomnumber = v.r FROM (SELECT unnest($1::integer[]) AS id, unnest($2::integer[]) AS r "
    "ORDER BY 1) AS v WHERE world.id = v.id"
)
SELECT_FORTUNES = "SELECT id, message FROM fortune"
ADDED_FORTUNE = "Additional fortune added at request time."
WORLD_IDS = range(1, 10_001)
_INTEGER = re.compile(r"[+-]?[0-9]+")

_pool: Any = None
_lock: asyncio.Lock | None = None


async def pool() -> Any:
    global _pool, _lock
    if _pool is None:
        url = os.environ.get("DATABASE_URL")
        if not url:
            raise LookupError("no database is configured: set DATABASE_URL")
        if _lock is None:
            _lock = asyncio.Lock()
        async with _lock:
            if _pool is None:
                # Idle connections stay open, as in Spikard's workload app.
                _pool = await asyncpg.create_pool(
                    url, min_size=0, max_size=16, timeout=5, reset=_keep_session, max_inactive_connection_lifetime=0
                )
    return _pool


async def _keep_session(conn: Any) -> None:
    """No handler leaves session state: connections return to the pool without asyncpg's reset
    query (an open transaction is still rolled back), as in Spikard's workload app."""


async def _numbers(conn: Any, ids: list[int]) -> list[int]:
    """One query per id, pipelined (``fetchmany``), as in Spikard's workload app."""
    rows = await conn.fetchmany(SELECT_WORLD, [(id,) for id in ids])
    if len(rows) != len(ids):
        raise RuntimeError(f"{len(ids)} ids asked for, {len(rows)} rows found")
    return [number for (number,) in rows]


def count(queries: str | None) -> int:
    if queries is None or not _INTEGER.fullmatch(queries):
        return 1
    return min(max(int(queries), 1), 500)


async def one() -> dict:
    id = random.randint(1, 10_000)
    async with (await pool()).acquire() as conn:
        return {"id": id, "randomNumber": await conn.fetchval(SELECT_WORLD, id)}


async def many(queries: str | None) -> list:
    ids = random.choices(WORLD_IDS, k=count(queries))
    async with (await pool()).acquire() as conn:
        numbers = await _numbers(conn, ids)
    return [{"id": id, "randomNumber": number} for id, number in zip(ids, numbers, strict=True)]


async def update(queries: str | None) -> list:
    ids = sorted(random.sample(WORLD_IDS, count(queries)))
    async with (await pool()).acquire() as conn:
        await _numbers(conn, ids)
        numbers = random.choices(WORLD_IDS, k=len(ids))
        rows = [{"id": id, "randomNumber": n} for id, n in zip(ids, numbers, strict=True)]
        await conn.execute(UPDATE_WORLD, ids, numbers)
    return rows


async def fortunes() -> str:
    async with (await pool()).acquire() as conn:
        rows = [tuple(row) for row in await conn.fetch(SELECT_FORTUNES)]
    rows.append((0, ADDED_FORTUNE))
    rows.sort(key=itemgetter(1))
    cells = "".join(f"<tr><td>{id}</td><td>{html.escape(message)}</td></tr>" for id, message in rows)
    return (
        "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
        f"<tr><th>id</th><th>message</th></tr>{cells}</table></body></html>"
    )
