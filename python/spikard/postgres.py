"""PostgreSQL in the engine: a connection pool whose queries run on tokio-postgres.

::

    from spikard import Spikard
    from spikard.postgres import Pool

    app = Spikard()
    db = Pool("postgresql://app@localhost/app", max_size=10)

    @app.get("/users/{user_id}")
    async def user(user_id: int) -> dict:
        row = await db.fetchrow("SELECT id, name FROM users WHERE id = $1", user_id)
        return {"id": row[0], "name": row[1]}

    @app.on_shutdown
    async def close() -> None:
        await db.close()

Queries are awaited like asyncpg's: ``fetch`` (every row), ``fetchrow`` (the first, or
``None``), ``fetchval`` (one value), ``execute`` (rows affected), and ``fetchmany`` /
``executemany``, which run a statement once per argument tuple, pipelined on one connection.
Parameters are ``$1``, ``$2``, … and are converted to the type PostgreSQL declares for each;
rows are tuples of Python values. ``async with db.acquire() as conn`` holds one connection,
``async with db.transaction() as conn`` holds one inside ``BEGIN`` … ``COMMIT`` (``ROLLBACK``
when the block raises).

On an engine thread the query runs on the runtime that serves the request, and the handler
resumes as soon as the answer is in. Connections open on first use, up to ``max_size`` per
worker. A database that cannot be reached raises :class:`Unavailable`, which the engine
answers with a 503 problem document when a handler lets it through.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from ._spikard import Acquired, Connection, PgPool, Transaction

__all__ = ["Acquired", "Connection", "Pool", "PostgresError", "Transaction", "Unavailable"]

T = TypeVar("T")


class PostgresError(Exception):
    """A statement PostgreSQL refused (``sqlstate`` is its SQLSTATE code, e.g. ``"23505"``
    for a unique violation), or a failure of the driver (``sqlstate`` is ``None``)."""

    def __init__(
        self, message: str, sqlstate: str | None = None, detail: str | None = None, hint: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.sqlstate = sqlstate
        self.detail = detail
        self.hint = hint


class Unavailable(PostgresError, ConnectionError):
    """The database cannot be reached: no connection could be opened in time, or one broke.
    The engine answers a handler that raises it with ``503 Service Unavailable``."""


class Pool(PgPool):
    """A pool of PostgreSQL connections, at most ``max_size`` per worker, opened on first use.

    ``dsn`` is a URL (``postgresql://user:password@host:port/dbname``) or ``key=value``
    pairs. ``connect_timeout``: seconds to open a connection; ``acquire_timeout``: seconds a
    query waits for a free connection. Both end in :class:`Unavailable`.
    """

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """``async with pool.transaction() as conn``: one connection inside a transaction,
        committed when the block ends, rolled back when it raises."""
        async with self.acquire() as connection, connection.transaction():
            yield connection

    async def close(self) -> None:
        """Refuses further queries and closes idle connections (those in use close when
        they are given back)."""
        self._close()


async def _then(first: Awaitable[Any], value: T) -> T:
    await first
    return value
